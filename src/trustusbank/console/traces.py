"""One trace, gathered for its waterfall: its spans, what belongs with them, and the evidence behind it.

Gathered the way `evidence.trace` joins records, and saying which way each piece came:
- the trace's own spans, from every component's span file (agents, waypoint, ztunnel);
- spans the waypoint *links* (the HBONE tunnel that carried a request: a separate trace);
- the connection that carried the first request to the agent (the chatbot records no span
  and ztunnel starts its own trace per connection): *correlated* by the agent's SPIFFE
  identity and the time, as an investigator would;
- the evidence store's records for the trace and those `evidence.trace` *joins* to it (a
  connection a vendor's server opened during a tool call, the paired deny of a refused
  connection), with the spans of the joined connections.
A deny is marked where it happened: on the span its record belongs to (the waypoint's
request, the ztunnel side that refused), else as a point under the span it happened in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from trustusbank.agents.a2a import spans as genai
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Topology
from trustusbank.console.agents import topology_of
from trustusbank.console.masking import Masker
from trustusbank.console.spanfiles import Span, read_spans, span_files
from trustusbank.console.waterfall import (
    WAYPOINT,
    ZTUNNEL,
    Extra,
    Mark,
    Point,
    Waterfall,
    layout,
    short_identity,
)
from trustusbank.errors import TrustusbankError
from trustusbank.evidence import Record, ingest, open_store
from trustusbank.evidence import trace as evidence_trace
from trustusbank.evidence.query import Linked

PATH_MATCH_WINDOW = 2.0  # seconds between a waypoint span's end and its log line


@dataclass
class TraceView:
    trace_id: str
    spans: list[Span]
    waterfall: Waterfall
    evidence: list[Linked] = field(default_factory=list)
    evidence_error: str | None = None
    masker: Masker = field(default_factory=Masker)

    @property
    def conversations(self) -> list[str]:
        found = (str(s.attributes.get(genai.CONVERSATION_ID) or "") for s in self.spans)
        return sorted({c for c in found if c})

    @property
    def found(self) -> bool:
        return bool(self.spans or self.evidence)


def _seconds(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def _evidence(files: ClusterFiles, trace_id: str) -> tuple[list[Linked], str | None]:
    """The store's records for the trace, after taking in what was written since the last ingest."""
    try:
        ingest(files)
        return evidence_trace(open_store(files), trace_id).records, None
    except (TrustusbankError, sqlite3.Error, OSError) as exc:
        return [], f"the evidence store could not be read: {exc}"


def _identity(topology: Topology | None, span: Span) -> str | None:
    if topology is None:
        return None
    for pod in topology.pods:
        if (pod.namespace, pod.deployment) == (span.namespace, span.service):
            return pod.spiffe_uri(topology.trust_domain)
    return None


def _anchor(spans: Sequence[Span], moment: float) -> str | None:
    """The innermost span of the trace's own work (not a connection) that was running at `moment`."""
    running = [s for s in spans if s.service != ZTUNNEL and s.start <= moment <= s.end]
    return max(running, key=lambda s: s.start).span_id if running else None


def _caller_connection(
    main: Sequence[Span], others: Sequence[Span], topology: Topology | None
) -> list[Extra]:
    """The connection (a separate ztunnel trace) open into the agent when the trace's first run began."""
    ids = {s.span_id for s in main}
    roots = [s for s in main if s.operation == genai.INVOKE_AGENT and s.parent_id not in ids]
    extras = []
    for root in roots[:1]:
        identity = _identity(topology, root)
        if identity is None:
            continue
        carrying = [
            s
            for s in others
            if s.service == ZTUNNEL
            and s.attributes.get("dst.identity") == identity
            and s.start <= root.start <= s.end
        ]
        if not carrying:
            continue
        latest = max(carrying, key=lambda s: s.start)
        connection = [s for s in others if s.trace_id == latest.trace_id]
        source = latest.attributes.get("src.identity")
        who = short_identity(source).rpartition("/")[2] or "caller"
        extras.append(
            Extra(
                None,
                "correlated",
                who,
                f"{short_identity(source)} → {root.service}: the connection that carried the request "
                f"(ztunnel's own trace {latest.trace_id[:8]}…, correlated by identity and time)",
                connection,
            )
        )
    return extras


def _linked(main: Sequence[Span], others: Sequence[Span]) -> list[Extra]:
    by_id = {(s.trace_id, s.span_id): s for s in others}
    extras = []
    for span in main:
        linked = [by_id[link] for link in span.links if link in by_id]
        if linked:
            extras.append(
                Extra(
                    span.span_id,
                    "linked",
                    ZTUNNEL,
                    f"carried by the HBONE tunnel (linked trace {linked[0].trace_id[:8]}…)",
                    linked,
                )
            )
    return extras


def _body(record: Record) -> dict[str, object]:
    body = record.original()
    return body if isinstance(body, dict) else {}


def _waypoint_span(main: Sequence[Span], record: Record, used: set[str]) -> Span | None:
    """The waypoint request span a waypoint log line was written for: same trace and path, nearest end."""
    path = _body(record).get("http.path")
    moment = _seconds(record.time)
    candidates = [
        s
        for s in main
        if s.service == WAYPOINT
        and s.span_id not in used
        and s.attributes.get("url.path") == path
        and abs(s.end - moment) <= PATH_MATCH_WINDOW
    ]
    return min(candidates, key=lambda s: abs(s.end - moment)) if candidates else None


def _connection_span(spans: Sequence[Span], record: Record) -> Span | None:
    """The ztunnel span of a connection record: the side (inbound, outbound) that logged it."""
    side = _body(record).get("direction")
    return next(
        (
            s
            for s in spans
            if s.service == ZTUNNEL and s.trace_id == record.trace_id and s.name == f"ztunnel {side}"
        ),
        None,
    )


def gather(files: ClusterFiles, trace_id: str) -> TraceView:
    """Everything the trace page shows for `trace_id` (32 lowercase hex digits)."""
    paths = span_files(files)
    main = [s for s in read_spans(paths, [trace_id]) if s.trace_id == trace_id]
    evidence, error = _evidence(files, trace_id)
    topology = topology_of(files)
    linked_traces = {t for s in main for t, _ in s.links}
    joined_traces = {x.record.trace_id for x in evidence if x.record.trace_id} - {trace_id}
    roots = [s for s in main if s.operation == genai.INVOKE_AGENT]
    identities = {i for i in (_identity(topology, s) for s in roots[:1]) if i}
    needles = [*linked_traces, *joined_traces, *identities]
    others = [s for s in read_spans(paths, needles) if s.trace_id != trace_id] if needles else []

    marks: dict[str, Mark] = {}
    labels: dict[str, str] = {}
    points: list[Point] = []
    used: set[str] = set()
    extras = [*_caller_connection(main, others, topology), *_linked(main, others)]
    for joined in sorted(joined_traces):
        spans = [s for s in others if s.trace_id == joined]
        records = [x for x in evidence if x.record.trace_id == joined]
        if spans and records:
            first = records[0]
            extras.append(
                Extra(
                    _anchor(main, min(s.start for s in spans)),
                    "joined",
                    ZTUNNEL,
                    f"connection {joined[:8]}… ({first.link})",
                    spans,
                )
            )
    for linked in evidence:
        record = linked.record
        mark = Mark("deny", f"{record.kind}: {record.summary}") if record.is_deny else None
        span = None
        if record.source == "waypoint" and record.trace_id == trace_id:
            span = _waypoint_span(main, record, used)
            if span is not None:
                used.add(span.span_id)
                tool = f" {record.tool}" if record.tool else ""
                decision = record.kind.partition("-")[2]
                body = _body(record)
                method = body.get("mcp.method") or body.get("http.method")
                labels[span.span_id] = f"{method}{tool} → {decision}"
        elif record.source == "ztunnel" and record.trace_id:
            span = _connection_span([*main, *others], record)
        if span is not None:
            if mark is not None:
                marks[span.span_id] = mark
        elif mark is not None:
            moment = _seconds(record.time)
            points.append(Point(moment, _anchor(main, moment), record.source, record.summary, mark))
    waterfall = layout(main, marks=marks, labels=labels, extras=extras, points=points)
    # the evidence's summaries quote tool arguments: masked with what the trace's tool calls revealed
    revealed = [
        str(s.attributes.get(key) or "") for s in main for key in (genai.TOOL_ARGUMENTS, genai.TOOL_RESULT)
    ]
    return TraceView(trace_id, main, waterfall, evidence, error, Masker(revealed))
