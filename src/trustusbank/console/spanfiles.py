"""The components' span files, as the operator reads them while they are being written.

An exporter appends a batch at a time, so a read can land in the middle of a line: only
complete lines are taken, the rest is left for the next read. A line that is not a span
(not JSON, or not the SDK's span shape) is skipped, never fatal: one bad line must not hide
a trace. Lines are filtered by plain substring before they are parsed (a trace id, an
identity), so a page about one trace does not parse every connection span ever written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence.sources import trace_id as normalize_trace_id

AGENT_FILES = "agent-*.jsonl"  # what agents write (agents/a2a/server.py traces_path)
ALL_FILES = "*.jsonl"


def _hex(value: Any) -> str:
    return str(value or "").lower().removeprefix("0x")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _seconds(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Span:
    """One exported OpenTelemetry span, with the fields the console reads."""

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_id: str | None
    name: str
    start: float  # epoch seconds
    end: float
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)
    status: str = "UNSET"
    status_description: str = ""
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id) of linked spans

    @classmethod
    def from_json(cls, data: Any) -> Span | None:
        """The span in one exported line, or None when the line is not a span."""
        if not isinstance(data, dict):
            return None
        context = data.get("context")
        if not isinstance(context, dict):
            return None
        trace = normalize_trace_id(context.get("trace_id"))
        span_id = _hex(context.get("span_id"))
        start, end = _seconds(data.get("start_time")), _seconds(data.get("end_time"))
        if trace is None or not span_id or start is None or end is None:
            return None
        status, resource, attributes = (
            _mapping(data.get(key)) for key in ("status", "resource", "attributes")
        )
        links = []
        for link in data.get("links") or []:
            linked = link.get("context") if isinstance(link, dict) else None
            if isinstance(linked, dict) and normalize_trace_id(linked.get("trace_id")):
                links.append((_hex(linked.get("trace_id")), _hex(linked.get("span_id"))))
        return cls(
            trace_id=trace,
            span_id=span_id,
            parent_id=_hex(data.get("parent_id")) or None,
            name=str(data.get("name") or "?"),
            start=start,
            end=max(end, start),
            attributes=attributes,
            resource=_mapping(resource.get("attributes")),
            status=str(status.get("status_code") or "UNSET"),
            status_description=str(status.get("description") or ""),
            links=tuple(links),
        )

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name") or "")

    @property
    def namespace(self) -> str:
        return str(self.resource.get("service.namespace") or "")

    @property
    def operation(self) -> str:
        return str(self.attributes.get("gen_ai.operation.name") or "")

    @property
    def failed(self) -> bool:
        return self.status == "ERROR"

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000


def complete_lines(path: Path) -> Iterator[str]:
    """The file's lines that end in a newline; a file that vanished meanwhile has none."""
    try:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.endswith(b"\n"):
                    yield raw.decode("utf-8", errors="replace")
    except FileNotFoundError:
        return


def read_spans(paths: Iterable[Path], needles: Iterable[str] = ()) -> list[Span]:
    """Every span in `paths` (only those whose line holds one of `needles`, when given), by start."""
    wanted = [n for n in needles if n]
    found: list[Span] = []
    for path in paths:
        for line in complete_lines(path):
            if wanted and not any(n in line for n in wanted):
                continue
            try:
                span = Span.from_json(json.loads(line))
            except ValueError:
                continue
            if span is not None:
                found.append(span)
    found.sort(key=lambda s: (s.start, s.end))
    return found


def span_files(files: ClusterFiles, pattern: str = ALL_FILES) -> list[Path]:
    """The components' and every pod's span files (`ClusterFiles.outputs`)."""
    return [p for p in files.outputs("traces", pattern) if p.is_file()]
