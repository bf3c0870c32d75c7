"""A trace laid out as a waterfall: one row per span, indented under its parent, placed on a time axis.

No I/O: the caller gathers the spans and the evidence; this decides rows, depths and where
each bar starts and ends as a percentage of the axis, which the page draws as CSS widths.

The axis is the trace's own work (the agent's and the waypoint's spans). ztunnel's spans
are connections, and a pooled connection outlives the request that opened it by seconds,
so they would squash everything else into a sliver; their bars are clipped to the axis and
say so. Spans of other traces that belong to this one (the tunnel a request was carried
in, the connection a vendor opened during a tool call, the caller's connection) are shown
under the span they belong to, in a group that says how they were joined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

from trustusbank.agents.a2a import spans as genai
from trustusbank.console.spanfiles import Span

ZTUNNEL = "ztunnel"
WAYPOINT = "agentgateway"
MIN_WIDTH = 0.4  # percent: the shortest bar still visible
MAX_DEPTH = 40  # deeper rows are drawn at this depth (hostile parent chains)


@dataclass(frozen=True)
class Mark:
    """What went wrong where: a policy's deny, or an error."""

    kind: Literal["deny", "error"]
    text: str


@dataclass(frozen=True)
class Extra:
    """Spans of another trace that belong under a span of this one, and how they were joined."""

    anchor: str | None  # span id in this trace; None: before the first row
    relation: str  # "linked", "joined", "correlated"
    component: str
    why: str
    spans: Sequence[Span]


@dataclass(frozen=True)
class Point:
    """A record with a time but no duration (an evidence record), under the span it happened in."""

    time: float
    anchor: str | None
    component: str
    label: str
    mark: Mark | None = None


@dataclass(frozen=True)
class Row:
    depth: int
    component: str
    label: str
    offset_ms: float
    duration_ms: float | None  # None: a point in time
    left: float  # percent of the axis
    width: float  # percent of the axis; 0 for a point
    mark: Mark | None = None
    relation: str = ""  # "" for this trace's own spans
    span_id: str | None = None
    clipped: str = ""  # why the bar is shorter than the span


@dataclass
class Waterfall:
    t0: float
    t1: float
    rows: list[Row] = field(default_factory=list)

    @property
    def components(self) -> list[str]:
        """The components in the order they first appear."""
        return list(dict.fromkeys(row.component for row in self.rows))


def short_identity(value: object) -> str:
    """`spiffe://td/ns/X/sa/Y` as `X/Y`; anything else as it is."""
    text = str(value or "?")
    if "/ns/" in text and "/sa/" in text:
        namespace = text.split("/ns/", 1)[1].split("/sa/", 1)
        return f"{namespace[0]}/{namespace[1]}"
    return text


def component(span: Span) -> str:
    """Which part of the system did this: an agent, the model it called, the waypoint, ztunnel, a server."""
    if span.service == ZTUNNEL:
        return ZTUNNEL
    if span.service == WAYPOINT:
        if span.name == "waypoint upstream":
            path = urlsplit(str(span.attributes.get("url.full") or "")).path
            return "MCP server" if path.rstrip("/").endswith("/mcp") else "upstream"
        return "waypoint"
    if span.operation == genai.CHAT:
        return "model"
    return span.service or "?"


def label(span: Span) -> str:
    a = span.attributes
    if span.service == ZTUNNEL:
        node = span.resource.get("k8s.node.name") or "?"
        src, dst = short_identity(a.get("src.identity")), short_identity(a.get("dst.identity"))
        return f"{span.name} on {node}: {src} → {dst}"
    if span.name == "waypoint upstream":
        return f"upstream {urlsplit(str(a.get('url.full') or '')).hostname or '?'}"
    if span.operation == genai.CHAT:
        tokens = f"{a.get(genai.INPUT_TOKENS, '?')}→{a.get(genai.OUTPUT_TOKENS, '?')} tokens"
        return f"chat {a.get(genai.REQUEST_MODEL, '?')} for {span.service} ({tokens})"
    if span.operation == genai.EXECUTE_TOOL:
        tool = a.get(genai.TOOL_NAME, "?")
        if a.get(genai.TOOL_TYPE) == genai.TOOL_TYPE_AGENT:
            return f"hand-off {tool} → agent {a.get(genai.MCP_SERVER) or '?'}"
        return f"tool {tool} @ {a.get(genai.MCP_SERVER) or '?'}"
    return span.name


def axis(spans: Iterable[Span]) -> tuple[float, float]:
    spans = list(spans)
    work = [s for s in spans if s.service != ZTUNNEL] or spans
    t0 = min(s.start for s in work)
    t1 = max(s.end for s in work)
    return t0, max(t1, t0 + 0.001)


class _Layout:
    def __init__(
        self,
        waterfall: Waterfall,
        marks: Mapping[str, Mark],
        labels: Mapping[str, str],
        extras: Sequence[Extra],
        points: Sequence[Point],
    ) -> None:
        self.w = waterfall
        self.marks = marks
        self.labels = labels
        self.extras = extras
        self.points = points
        self.seen: set[str] = set()

    def place(self, start: float, end: float) -> tuple[float, float, str]:
        span = self.w.t1 - self.w.t0
        left = min(max((start - self.w.t0) / span, 0.0), 1.0) * 100
        right = min(max((end - self.w.t0) / span, 0.0), 1.0) * 100
        clipped = []
        if start < self.w.t0:
            clipped.append(f"began {(self.w.t0 - start) * 1000:.1f} ms before")
        if end > self.w.t1:
            clipped.append(f"lasted {(end - self.w.t1) * 1000:.1f} ms beyond")
        width = max(right - left, MIN_WIDTH)
        return min(left, 100 - width), width, "; ".join(clipped)

    def span_row(self, span: Span, depth: int, relation: str) -> Row:
        left, width, clipped = self.place(span.start, span.end)
        mark = self.marks.get(span.span_id)
        if mark is None and span.failed:
            mark = Mark("error", span.status_description or "error status")
        text = label(span)
        extra = self.labels.get(span.span_id)
        return Row(
            depth=min(depth, MAX_DEPTH),
            component=component(span),
            label=f"{text}: {extra}" if extra else text,
            offset_ms=(span.start - self.w.t0) * 1000,
            duration_ms=span.duration_ms,
            left=left,
            width=width,
            mark=mark,
            relation=relation,
            span_id=span.span_id,
            clipped=clipped,
        )

    def tree(self, spans: Sequence[Span], depth: int, relation: str) -> None:
        ids = {s.span_id for s in spans}
        children: dict[str | None, list[Span]] = {}
        for span in spans:
            parent = span.parent_id if span.parent_id in ids and span.parent_id != span.span_id else None
            children.setdefault(parent, []).append(span)
        for group in children.values():
            group.sort(key=lambda s: (s.start, s.end))
        stack = [(span, depth) for span in reversed(children.get(None, []))]
        while stack:
            span, level = stack.pop()
            if span.span_id in self.seen:
                continue
            self.seen.add(span.span_id)
            self.w.rows.append(self.span_row(span, level, relation))
            self.attached(span.span_id, level + 1)
            stack += [(child, level + 1) for child in reversed(children.get(span.span_id, []))]
        for span in spans:  # whatever a cycle of parent ids kept from the walk: shown, not lost
            if span.span_id not in self.seen:
                self.seen.add(span.span_id)
                self.w.rows.append(self.span_row(span, depth, relation))

    def attached(self, anchor: str | None, depth: int) -> None:
        self.points_at(anchor, depth)
        self.extras_at(anchor, depth)

    def points_at(self, anchor: str | None, depth: int) -> None:
        for point in sorted((p for p in self.points if p.anchor == anchor), key=lambda p: p.time):
            left, _, _ = self.place(point.time, point.time)
            self.w.rows.append(
                Row(
                    depth=min(depth, MAX_DEPTH),
                    component=point.component,
                    label=point.label,
                    offset_ms=(point.time - self.w.t0) * 1000,
                    duration_ms=None,
                    left=left,
                    width=0.0,
                    mark=point.mark,
                    relation="evidence",
                )
            )

    def extras_at(self, anchor: str | None, depth: int) -> None:
        for extra in (e for e in self.extras if e.anchor == anchor):
            spans = [s for s in extra.spans if s.span_id not in self.seen]
            if not spans:  # already drawn (one tunnel carries many requests): once is enough
                continue
            start = min(s.start for s in spans)
            end = max(s.end for s in spans)
            left, width, clipped = self.place(start, end)
            self.w.rows.append(
                Row(
                    depth=min(depth, MAX_DEPTH),
                    component=extra.component,
                    label=extra.why,
                    offset_ms=(start - self.w.t0) * 1000,
                    duration_ms=(end - start) * 1000,
                    left=left,
                    width=width,
                    relation=extra.relation,
                    clipped=clipped,
                )
            )
            self.tree(spans, depth + 1, extra.relation)


def layout(
    spans: Sequence[Span],
    *,
    marks: Mapping[str, Mark] | None = None,
    labels: Mapping[str, str] | None = None,
    extras: Sequence[Extra] = (),
    points: Sequence[Point] = (),
) -> Waterfall:
    """The rows of one trace (`spans`, all of one trace id), with what is attached to its spans."""
    unique = list({s.span_id: s for s in spans}.values())
    if not unique:
        times = [p.time for p in points] or [0.0]
        waterfall = Waterfall(min(times), max(max(times), min(times) + 0.001))
    else:
        waterfall = Waterfall(*axis(unique))
    anchors = {s.span_id for s in unique}
    # anchored to a span that is not there: shown at the top level, after the trace
    points = [p if p.anchor in anchors else replace(p, anchor=None) for p in points]
    extras = [e if e.anchor in anchors else replace(e, anchor=None) for e in extras]
    builder = _Layout(waterfall, marks or {}, labels or {}, extras, points)
    builder.extras_at(None, 0)
    builder.tree(unique, 0, "")
    builder.points_at(None, 0)
    return waterfall
