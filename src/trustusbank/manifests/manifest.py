"""One validated manifest, where it came from, and the problems found in a bundle.

Every typed view keeps its `Manifest`, so a check about any field can still point at the
file and line that declares it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

from trustusbank.errors import ConfigError

JsonPath = tuple[str | int, ...]
Position = tuple[int, int]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the bundle; `line` 0 means the file as a whole."""

    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.message}"


class ManifestError(ConfigError):
    """The bundle cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def line_at(positions: Mapping[JsonPath, Position], path: Sequence[str | int]) -> int | None:
    """The line of `path`, else of its nearest ancestor: an absent field is reported where it belongs."""
    key = tuple(path)
    while key not in positions:
        if not key:
            return None
        key = key[:-1]
    return positions[key][0]


@dataclass(frozen=True)
class Source:
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Manifest:
    """One validated document; `body` is the whole document as parsed."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    body: dict[str, Any]
    source: Source
    positions: Mapping[JsonPath, Position] = field(default_factory=dict, repr=False, compare=False)

    def path_line(self, path: Sequence[str | int]) -> int:
        return line_at(self.positions, path) or self.source.line

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        return Problem(self.source.file, self.path_line(path), f"{self.ref}: {message}")

    @property
    def ref(self) -> str:
        """How messages name this object: `Kind namespace/name`."""
        scope = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {scope}{self.name}"


def namespace_of(manifest: Manifest) -> str:
    # Kubernetes places an object without metadata.namespace in "default"; so do we.
    return manifest.namespace or "default"


def field_at(body: Any, *keys: str) -> Any:
    """Walk nested mappings, treating missing and null alike (the schemas allow both)."""
    node: Any = body
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


class Objects(Protocol):
    """What the API groups' checks and controllers read of a bundle (`bundle.Bundle` is one);
    typed structurally so that they need not import the bundle, which sits above them."""

    objects: list[Manifest]

    def replaced(self, objects: Iterable[Manifest]) -> Self: ...
