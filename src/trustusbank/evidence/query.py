"""The auditor's questions, asked of the evidence store.

`query` filters records: denies in a time window, by SPIFFE identity, by image or
digest, by kind or source. `trace` gathers the records behind one trace, and
`explain` the records behind one deny.

A trace id alone does not reach from a tool call to the connection it caused:
ztunnel works at L4 and starts its own trace per connection, and the destination's
deny is decided before that trace exists. So records are also joined the way an
investigator joins them, and each join says which way it was made:
- "during tool call": a connection whose source is the MCP server a tool call went
  to, opened while that call was running (the call's span start..end);
- "paired deny": the destination's deny and the source's HBONE 401 of one
  connection (same identities, within two seconds);
- "trace": every record sharing a trace id with a record already gathered.
A join by time can also pick up another caller's request to the same server at
the same moment; the link names the record it came through, so that can be seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from trustusbank.errors import ConfigError
from trustusbank.evidence.record import DENY_SUFFIX, Record, iso, parse_time
from trustusbank.evidence.sources import trace_id as normalize_trace_id
from trustusbank.evidence.store import EvidenceStore

RELATIVE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
PAIR_WINDOW = timedelta(seconds=2)
LONGEST_TOOL_CALL = timedelta(minutes=5)
EXPANSION_ROUNDS = 3


class QueryError(ConfigError, ValueError):
    """A filter that cannot be understood (a bad time, an empty identity...)."""


Moment = str | float | datetime


def when(text: Moment, now: datetime | None = None) -> str:
    """An absolute time (ISO 8601, epoch seconds, a datetime) or one relative to now (`90s`, `10m`, `2h`,
    `1d`, `1w`), as our ISO spelling."""
    if isinstance(text, datetime):
        return iso(text if text.tzinfo else text.replace(tzinfo=UTC))
    if isinstance(text, int | float):
        moment = parse_time(text)
        if moment is None:
            raise QueryError(f"{text!r} is not a time")
        return moment
    found = RELATIVE.match(text.strip())
    if found:
        delta = timedelta(**{UNITS[found["unit"]]: float(found["n"])})
        return iso((now or datetime.now(UTC)) - delta)
    parsed = parse_time(text.strip())
    if parsed is None:
        raise QueryError(f"{text!r} is neither an ISO 8601 time nor a relative one like 10m, 2h, 1d")
    return parsed


def _literal(text: str) -> str:
    """`text` matched literally inside a LIKE pattern (with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def identity_pattern(text: str) -> tuple[str, str]:
    """SQL (operator, value) matching an identity given as `spiffe://…`, `td/ns/x/sa/y` or `ns/sa`."""
    value = text.strip()
    if value.startswith("spiffe://"):
        return "=", value
    parts = value.split("/")
    if len(parts) == 2 and all(parts):
        return "LIKE", f"spiffe://%/ns/{_literal(parts[0])}/sa/{_literal(parts[1])}"
    if "/ns/" in value and "/sa/" in value:
        return "=", f"spiffe://{value}"
    raise QueryError(f"{text!r} is not an identity: give spiffe://<td>/ns/<ns>/sa/<sa> or <ns>/<sa>")


@dataclass(frozen=True)
class Query:
    since: Moment | None = None  # ISO 8601, relative (10m), epoch seconds or a datetime
    until: Moment | None = None
    identity: str | None = None
    image: str | None = None
    digest: str | None = None
    kinds: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    denies: bool = False
    trace_id: str | None = None
    workload: str | None = None
    limit: int | None = None  # the latest N matches

    def where(self, now: datetime | None = None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            clauses.append("time >= ?")
            params.append(when(self.since, now))
        if self.until is not None:
            clauses.append("time <= ?")
            params.append(when(self.until, now))
        if self.identity:
            op, value = identity_pattern(self.identity)
            escape = " ESCAPE '\\'" if op == "LIKE" else ""
            clauses.append(f"(src_identity {op} ?{escape} OR dst_identity {op} ?{escape})")
            params += [value, value]
        if self.image:
            clauses.append("(image = ? OR image LIKE ? ESCAPE '\\')")
            params += [self.image, f"%{_literal(self.image)}%"]
        if self.digest:
            digest = self.digest if self.digest.startswith("sha256:") else f"sha256:{self.digest}"
            clauses.append("digest LIKE ? ESCAPE '\\'")
            params.append(f"{_literal(digest)}%")
        for column, values in (("kind", self.kinds), ("source", self.sources)):
            if values:
                clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params += list(values)
        if self.denies:
            clauses.append("kind LIKE ?")
            params.append(f"%{DENY_SUFFIX}")
        if self.trace_id:
            clauses.append("trace_id = ?")
            params.append(normalize_trace_id(self.trace_id) or self.trace_id)
        if self.workload:
            clauses.append("workload = ?")
            params.append(self.workload)
        return " AND ".join(clauses) or "1", params


def query(store: EvidenceStore, q: Query, now: datetime | None = None) -> list[Record]:
    """Matching records in time order (the latest `limit` of them, if a limit is set)."""
    where, params = q.where(now)
    records = sorted(store.select(where, params), key=lambda r: (r.time, r.seq))
    if q.limit is not None:
        records = records[-q.limit :] if q.limit > 0 else []
    return records


# -- traces -------------------------------------------------------------------
@dataclass(frozen=True)
class Linked:
    record: Record
    link: str  # how it was joined: "trace", "the record asked about", "during tool call #12", ...


@dataclass
class TraceView:
    subject: str  # the trace id or "record #<seq>"
    records: list[Linked] = field(default_factory=list)

    @property
    def trace_ids(self) -> list[str]:
        return sorted({x.record.trace_id for x in self.records if x.record.trace_id})

    @property
    def denies(self) -> list[Record]:
        return [x.record for x in self.records if x.record.is_deny]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "trace_ids": self.trace_ids,
            "records": [{**x.record.to_dict(), "link": x.link} for x in self.records],
        }


def _span_window(record: Record) -> tuple[str, str] | None:
    body = record.original()
    start, end = parse_time(body.get("start_time")), parse_time(body.get("end_time"))
    return (start, end) if start and end else None


def _shifted(moment: str, delta: timedelta) -> str:
    return iso(datetime.fromisoformat(moment) + delta)


def related(store: EvidenceStore, record: Record) -> list[tuple[Record, str]]:
    out: list[tuple[Record, str]] = []
    if record.kind == "tool-call" and record.dst_identity:
        window = _span_window(record)
        if window:
            for other in store.select(
                "kind LIKE 'l4-%' AND src_identity = ? AND time >= ? AND time <= ?",
                (record.dst_identity, *window),
            ):
                out.append((other, f"opened by the server during tool call #{record.seq}"))
    if record.kind.startswith("l4-") and record.src_identity:
        earliest = _shifted(record.time, -LONGEST_TOOL_CALL)
        for call in store.select(
            "kind = 'tool-call' AND dst_identity = ? AND time >= ? AND time <= ?",
            (record.src_identity, earliest, record.time),
        ):
            window = _span_window(call)
            if window and window[0] <= record.time <= window[1]:
                out.append((call, f"tool call running when connection #{record.seq} was made"))
    if record.kind in ("l4-deny", "l4-refused") and record.src_identity and record.dst_identity:
        other_kind = "l4-refused" if record.kind == "l4-deny" else "l4-deny"
        for other in store.select(
            "kind = ? AND src_identity = ? AND dst_identity = ? AND time >= ? AND time <= ?",
            (
                other_kind,
                record.src_identity,
                record.dst_identity,
                _shifted(record.time, -PAIR_WINDOW),
                _shifted(record.time, PAIR_WINDOW),
            ),
        ):
            out.append((other, f"paired deny: the other side of connection #{record.seq}"))
    return out


def _expand(store: EvidenceStore, view: TraceView) -> TraceView:
    members = {x.record.seq: x for x in view.records}
    seen_traces: set[str] = set()
    frontier = [x.record for x in view.records]
    for _ in range(EXPANSION_ROUNDS):
        found: list[Record] = []
        for tid in sorted({r.trace_id for r in frontier if r.trace_id} - seen_traces):
            seen_traces.add(tid)
            for other in store.select("trace_id = ?", (tid,)):
                if other.seq not in members:
                    members[other.seq] = Linked(other, f"trace {tid}")
                    found.append(other)
        for record in frontier:
            for other, why in related(store, record):
                if other.seq not in members:
                    members[other.seq] = Linked(other, why)
                    found.append(other)
        if not found:
            break
        frontier = found
    view.records = sorted(members.values(), key=lambda x: (x.record.time, x.record.seq))
    return view


def trace(store: EvidenceStore, trace_id: str) -> TraceView:
    """Every record of a trace, and the records joined to them (connections, paired denies), by time."""
    tid = normalize_trace_id(trace_id)
    if tid is None:
        raise QueryError(f"{trace_id!r} is not a trace id (32 hex digits)")
    records = store.select("trace_id = ?", (tid,))
    return _expand(store, TraceView(tid, [Linked(r, f"trace {tid}") for r in records]))


def explain(store: EvidenceStore, seq: int) -> TraceView:
    """The records behind one record (typically a deny): its trace, its pair, the tool call behind it."""
    found = store.select("seq = ?", (seq,))
    if not found:
        raise QueryError(f"there is no record #{seq}")
    return _expand(store, TraceView(f"record #{seq}", [Linked(found[0], "the record asked about")]))
