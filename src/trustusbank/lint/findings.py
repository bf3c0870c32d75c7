"""A lint finding, and the two ways it is shown: for people (Rich) and for machines (JSON).

A finding always says two things: what is wrong with the YAML as written, and what a
real cluster does with it (`on_cluster`). The second is the point: a policy that
"looks right" and silently does nothing is only caught by saying what happens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from trustusbank.manifests.manifest import Manifest


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True)
class Finding:
    """One lint finding.

    `policy` is `<namespace>/<name>` (empty for a file-level problem); `rule` is the
    0-based index into `spec.rules` or `matchExpressions` (None: the object as a whole);
    `code` is a stable identifier for tests and machines.
    """

    file: Path
    line: int
    severity: Severity
    code: str
    kind: str
    policy: str
    rule: int | None
    message: str
    on_cluster: str

    @property
    def sort_key(self) -> tuple[str, int, int, int, str]:
        return (
            str(self.file),
            self.line,
            self.rule if self.rule is not None else -1,
            self.severity.rank,
            self.code,
        )

    def headline(self) -> str:
        """`file:line: severity: <policy> rule N: message`."""
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        subject = " ".join(
            part for part in (self.policy, f"rule {self.rule}" if self.rule is not None else "") if part
        )
        subject = f"{subject}: " if subject else ""
        return f"{where}: {self.severity.value}: {subject}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "line": self.line,
            "severity": self.severity.value,
            "code": self.code,
            "kind": self.kind,
            "policy": self.policy,
            "rule": self.rule,
            "message": self.message,
            "on_cluster": self.on_cluster,
        }


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """By file, then line, then rule; duplicates (same place, same code and text) dropped."""
    unique = {(f.file, f.line, f.code, f.rule, f.message): f for f in findings}
    return sorted(unique.values(), key=lambda f: f.sort_key)


def count(findings: Sequence[Finding], severity: Severity) -> int:
    return sum(1 for f in findings if f.severity == severity)


def summary(findings: Sequence[Finding]) -> str:
    """`N errors, M warnings` (and info, when there is any)."""
    errors, warnings, infos = (count(findings, s) for s in Severity)
    text = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return text + (f", {infos} info" if infos else "")


_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_human(findings: Sequence[Finding], console: Console) -> None:
    """Grouped by file; each finding is its headline plus an indented "on a real cluster" line."""
    current: Path | None = None
    for finding in findings:
        if finding.file != current:
            if current is not None:
                console.print()
            console.print(f"[bold]{escape(str(finding.file))}[/]")
            current = finding.file
        style = _STYLE[finding.severity]
        headline = escape(finding.headline())
        severity = f"{finding.severity.value}:"
        console.print(headline.replace(severity, f"[{style}]{severity}[/]", 1))
        if finding.on_cluster:
            console.print(f"    on a real cluster: {escape(finding.on_cluster)}", style="dim")
    if findings:
        console.print()
    console.print(summary(findings))


def render_json(findings: Sequence[Finding]) -> str:
    errors, warnings, infos = (count(findings, s) for s in Severity)
    document = {
        "findings": [f.as_dict() for f in findings],
        "summary": {"errors": errors, "warnings": warnings, "info": infos},
    }
    return json.dumps(document, indent=2)


class Emitter:
    """Builds the findings of one object: its file, the line of each field, its `<ns>/<name>`."""

    def __init__(self, manifest: Manifest, ref: str | None = None) -> None:
        self.manifest = manifest
        self.ref = ref or f"{manifest.namespace or 'default'}/{manifest.name}"

    def __call__(
        self,
        path: Sequence[str | int],
        severity: Severity,
        code: str,
        message: str,
        on_cluster: str,
        rule: int | None = None,
    ) -> Finding:
        line = self.manifest.path_line(path)
        return Finding(
            self.manifest.source.file,
            line,
            severity,
            code,
            self.manifest.kind,
            self.ref,
            rule,
            message,
            on_cluster,
        )
