"""Read multi-document YAML while remembering where every value came from.

`yaml.safe_load` forgets line numbers, and a report that says "spec.ports[0]
is wrong" without a line is slow to act on. Walking the composed node graph
ourselves keeps a position for each JSON path, and lets us reject duplicate keys,
which PyYAML silently resolves to the last one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trustusbank.manifests.manifest import JsonPath, Position, Problem, line_at

YAML_SUFFIXES = (".yaml", ".yml")
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True)
class Document:
    """One non-empty YAML document: its data and the (line, column) of each path, 1-based."""

    file: Path
    data: dict[str, Any]
    positions: dict[JsonPath, Position]

    @property
    def line(self) -> int:
        return self.positions[()][0]

    def line_of(self, path: Sequence[str | int]) -> int:
        return line_at(self.positions, path) or self.line


EXTRAS_DIR = "extras"
"""A folder of manifests applied on demand only (deploy/extras: the MCP guard policy, which the
bench applies): a directory's walk skips it, so `up` never loads it; name it to load it."""


def yaml_files(path: Path) -> list[Path]:
    """A single file is taken as given; a directory contributes its YAML files, recursively, sorted,
    except under an `extras` folder below it (EXTRAS_DIR)."""
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.suffix in YAML_SUFFIXES and p.is_file() and EXTRAS_DIR not in p.relative_to(path).parts[:-1]
    )


def read_documents(file: Path) -> tuple[list[Document], list[Problem]]:
    """Documents read before a syntax error are kept, so one typo does not hide a whole file."""
    documents: list[Document] = []
    problems: list[Problem] = []
    try:
        for node in yaml.compose_all(file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader):
            document = _document(file, node, problems)
            if document is not None:
                documents.append(document)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 0
        problems.append(Problem(file, line, f"YAML syntax error: {error.problem or error}"))
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(file, 0, f"cannot read: {error}"))
    return documents, problems


def _position(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _document(file: Path, node: yaml.Node, problems: list[Problem]) -> Document | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return None
    if not isinstance(node, yaml.MappingNode):
        problems.append(
            Problem(
                file,
                _position(node)[0],
                f"a manifest must be a mapping, not a {type(node).__name__.removesuffix('Node').lower()}",
            )
        )
        return None
    positions: dict[JsonPath, Position] = {(): _position(node)}
    data = _Builder(file, positions, problems).build(node, ())
    return Document(file, data, positions)


class _Builder:
    """Turns a node graph into plain data, recording positions and problems as it goes."""

    def __init__(self, file: Path, positions: dict[JsonPath, Position], problems: list[Problem]) -> None:
        self.file = file
        self.positions = positions
        self.problems = problems
        self.scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, path)
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                self._problem(key_node, "only plain scalar mapping keys are supported")
                continue
            key = self._scalar(key_node)
            if key in result:
                first = self.positions[(*path, key)][0]
                self._problem(key_node, f"duplicate key {key!r} (first set on line {first})")
                continue
            self.positions[(*path, key)] = _position(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _sequence(self, node: yaml.SequenceNode, path: JsonPath) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.positions[(*path, index)] = _position(item)
            items.append(self.build(item, (*path, index)))
        return items

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == TIMESTAMP_TAG:
            return node.value  # Kubernetes reads an unquoted date as a string; so must we.
        try:
            return self.scalars.construct_object(node)
        except yaml.constructor.ConstructorError as error:
            self._problem(node, str(error.problem))
            return None

    def _problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.file, _position(node)[0], message))
