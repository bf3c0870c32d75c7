"""Check every document Kubernetes mode applies before a cluster sees it.

A cluster refuses a misspelt field only when the server-side field validation is strict,
and a refusal half-way through an ordered apply leaves the story half set up; so each
document is checked here first, whole. Built-in kinds are checked against the OpenAPI
schema of the Kubernetes the cluster runs (`KUBERNETES_VERSION`, as shipped offline by
kubernetes-validate, strict: unknown fields are errors); custom resources (Istio, Gateway
API, agentgateway, kagent, Prometheus Operator) against the project's own strict schemas,
which `trustusbank manifests check` uses too. A kind that is neither is a problem, never a
pass: nothing is applied unchecked.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import VersionNotSupportedError, schema_contents
from referencing import Registry, Resource

from trustusbank.errors import ConfigError
from trustusbank.k8s.versions import KUBERNETES_VERSION
from trustusbank.manifests.kinds import KINDS, dotted, field_errors
from trustusbank.manifests.manifest import JsonPath
from trustusbank.manifests.schema import FieldError
from trustusbank.manifests.yaml_source import Document, read_documents, yaml_files

# Group, version, kind: `("apps", "v1", "Deployment")`; the core group is "".
GroupVersionKind = tuple[str, str, str]

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True, order=True)
class SchemaProblem:
    """One thing a cluster would refuse: where it is, in which object, at which field."""

    file: Path
    index: int  # the document's place among the file's non-empty documents, from 0
    line: int
    object: str  # "Deployment namespace/name"
    path: str  # the field, dotted: "spec.template.spec.containers[0].image"
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: document {self.index}: {self.object}: {self.path}: {self.message}"


def validate(documents: Iterable[Document]) -> list[SchemaProblem]:
    """Every schema problem of `documents`, numbered per file in the order given."""
    problems: list[SchemaProblem] = []
    seen: dict[Path, int] = {}
    for document in documents:
        index = seen.get(document.file, 0)
        seen[document.file] = index + 1
        problems += _document_problems(document, index)
    return sorted(problems)


def validate_path(path: Path) -> list[SchemaProblem]:
    """Every problem of the YAML files under `path` (one file, or a folder read recursively),
    including files that are not YAML at all; an absent `path` is a problem, not an empty pass."""
    if not path.exists():
        return [SchemaProblem(path, 0, 0, "", "", "no such file or directory")]
    files = yaml_files(path)
    if not files:
        return [SchemaProblem(path, 0, 0, "", "", "no *.yaml or *.yml files found")]
    documents: list[Document] = []
    problems: list[SchemaProblem] = []
    for file in files:
        read, unreadable = read_documents(file)
        documents += read
        problems += [SchemaProblem(file, len(read), p.line, "", "", p.message) for p in unreadable]
    return sorted(problems + validate(documents))


def is_built_in(api_version: str, kind: str) -> bool:
    """Whether the Kubernetes of `KUBERNETES_VERSION` serves this kind itself (not through a CRD)."""
    group, _, version = api_version.rpartition("/")
    return (group, version, kind) in _definition_names()


def _document_problems(document: Document, index: int) -> list[SchemaProblem]:
    data = document.data
    api_version, kind = data.get("apiVersion"), data.get("kind")
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    scope = f"{namespace}/" if isinstance(namespace, str) and namespace else ""
    ref = f"{kind or '<no kind>'} {scope}{name if isinstance(name, str) and name else '<unnamed>'}"

    def problem(path: JsonPath, message: str) -> SchemaProblem:
        return SchemaProblem(document.file, index, document.line_of(path), ref, dotted(path), message)

    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [problem((), "a manifest needs both apiVersion and kind")]
    found = [problem(path, message) for path, message in _field_errors(api_version, kind, data)]
    if not isinstance(name, str) or not name:
        found.append(problem(("metadata",), "metadata.name is required: kubectl apply cannot apply it"))
    return found


def _field_errors(api_version: str, kind: str, data: dict[str, Any]) -> list[FieldError]:
    if is_built_in(api_version, kind):
        return [
            found
            for error in _validator(api_version, kind).iter_errors(data)
            for found in field_errors(error)
        ]
    custom = KINDS.get((api_version, kind))
    if custom is not None:
        return custom.validate(data)
    message = (
        f"no schema for {kind} ({api_version}): not a Kubernetes {KUBERNETES_VERSION} kind, "
        "nor a custom resource the project knows (trustusbank.manifests.kinds)"
    )
    return [(("kind",), message)]


@functools.cache
def _definitions() -> tuple[str, dict[str, Any]]:
    """The `$id` and contents of the pinned version's strict definitions (all kinds, one file)."""
    directory = f"kubernetes-json-schema/v{KUBERNETES_VERSION}.0-local-strict"
    try:
        contents: dict[str, Any] = schema_contents(f"{directory}/_definitions.json", KUBERNETES_VERSION)
    except (VersionNotSupportedError, FileNotFoundError):
        raise ConfigError(
            f"kubernetes-validate {kubernetes_validate.__version__} ships no schemas for Kubernetes "
            f"{KUBERNETES_VERSION}; install kubernetes-validate>={KUBERNETES_VERSION}"
        ) from None
    return str(contents["$id"]), contents


@functools.cache
def _definition_names() -> dict[GroupVersionKind, str]:
    """Each built-in kind's definition, read from the schema's own `x-kubernetes-group-version-kind`
    (not from a file-naming rule, which cannot tell `gateway.networking.k8s.io` from a built-in)."""
    _, contents = _definitions()
    names: dict[GroupVersionKind, str] = {}
    for name, definition in contents["$defs"].items():
        if name.startswith("io.k8s.apimachinery."):
            continue  # DeleteOptions, WatchEvent...: carried by every group, never applied
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            names[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return names


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema_id, contents = _definitions()
    group, _, version = api_version.rpartition("/")
    definition = _definition_names()[(group, version, kind)]
    registry: Registry[Any] = Resource.from_contents(contents) @ Registry()
    return jsonschema.Draft202012Validator(
        {"$ref": f"{schema_id}#/$defs/{definition}"}, registry=registry, format_checker=_formats()
    )


def _formats() -> jsonschema.FormatChecker:
    """Only the formats the API server enforces and the schema cannot say: base64 `byte`
    (a Secret's data) and the integer widths; others stay unchecked rather than guessed."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("byte", raises=(binascii.Error, ValueError))(_is_base64)
    for name, (low, high) in _INT_RANGES.items():
        checker.checks(name)(functools.partial(_in_range, low=low, high=high))
    return checker


def _is_base64(value: object) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)  # raises on anything else
    return True


def _in_range(value: object, *, low: int, high: int) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or low <= value <= high
