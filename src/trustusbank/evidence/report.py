"""The DORA report's content, drawn from the evidence store alone (and the registry for Art. 28).

Art. 17 (ICT-related incident management) asks for the incident's record: when it
started, what was affected, who did it, what was contained. Here that is:
- the timeline: image pushes and restarts, policy changes, alerts, tool calls that
  carried personal data, connections to destinations the defence later denied,
  and every deny;
- what leaked: each tool call whose arguments carried personal data (field names
  only: the report does not repeat the data), and each connection that succeeded
  to a destination the same source was later denied, or to a suspect namespace;
- what was blocked: the denies, grouped, each with the offending SPIFFE identity,
  its image and the digest it was running;
- what failed: waypoint requests that were allowed but got no answer (the backend
  hung up, the waypoint erred): failures, listed apart, never among the blocked;
- whether the evidence itself is intact: the chain's verification and head hash.
Art. 28 (third-party ICT risk) asks for the register of providers: the registry's
catalogue with publisher, version, image, identity, pinned digest and tool-list hash,
next to the digest that is running now.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.errors import UnavailableError
from trustusbank.evidence.digests import PUSH_KINDS, START_KINDS, DigestTracker, image_store_lookup
from trustusbank.evidence.query import related
from trustusbank.evidence.record import Record, iso
from trustusbank.evidence.register import RegisterError, register_entries
from trustusbank.evidence.render import html, markdown
from trustusbank.evidence.sources import PII_FLAG, personal_data
from trustusbank.evidence.store import EvidenceStore, Verification

ROUTINE_RUNTIME = frozenset({"started", "ready", "stopped"})
TIMELINE_SOURCES = frozenset({"image", "policy", "alert"})
SEEDED = "image-seeded"
MAX_TIMELINE = 500
# A waypoint request that failed (its log's decision `error`): a failure, not a refusal.
FAILURE_KINDS = ("http-error", "mcp-error")


@dataclass
class Leak:
    record: Record
    fields: dict[str, list[str]]  # argument path -> personal-data field names
    delivered_to: list[str]  # destinations the server reached during the call


@dataclass
class Group:
    """Denies (or connections) that share who, to whom, and by which policy."""

    kind: str
    src_identity: str | None
    dst_identity: str | None
    policy: str | None
    workload: str | None
    image: str | None
    digests: list[str]
    count: int
    first: str
    last: str
    seqs: list[int]


@dataclass
class DoraReport:
    generated: str
    state: str
    verification: Verification
    timeline: list[Record]
    timeline_truncated: int
    leaks: list[Leak]
    exfil: list[Group]
    blocked: list[Group]
    register: list[dict[str, Any]]
    failed: list[Group] = field(default_factory=list)  # errors, not decisions: never in `blocked`
    register_error: str | None = None
    suspects: tuple[str, ...] = ()
    window: tuple[str, str] | None = None
    running: dict[str, str | None] = field(default_factory=dict)  # register name -> running digest

    @property
    def offenders(self) -> list[Group]:
        return [g for g in self.blocked if g.src_identity]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verification"] = self.verification.to_dict()
        out["timeline"] = [r.to_dict() for r in self.timeline]
        out["leaks"] = [{**asdict(x), "record": x.record.to_dict()} for x in self.leaks]
        return out


def _namespace_of(identity: str | None) -> str | None:
    if not identity or "/ns/" not in identity:
        return None
    return identity.split("/ns/", 1)[1].split("/", 1)[0]


def _group(records: list[Record]) -> list[Group]:
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for r in records:
        groups.setdefault((r.kind, r.src_identity, r.dst_identity, r.policy), []).append(r)
    out = []
    for (kind, src, dst, policy), members in groups.items():
        members.sort(key=lambda r: r.time)
        out.append(
            Group(
                kind,
                src,
                dst,
                policy,
                members[-1].workload,
                members[-1].image,
                sorted({r.digest for r in members if r.digest}),
                len(members),
                members[0].time,
                members[-1].time,
                [r.seq for r in members],
            )
        )
    return sorted(out, key=lambda g: (g.first, g.kind))


def _one_per_connection(records: list[Record]) -> list[Record]:
    """A connection is logged at both ends with one trace id; keep one record each (the destination's)."""
    chosen: dict[str, Record] = {}
    loose = []
    for r in sorted(records, key=lambda r: "seen at the destination" not in r.summary):
        if r.trace_id is None:
            loose.append(r)
        else:
            chosen.setdefault(r.trace_id, r)
    return sorted([*chosen.values(), *loose], key=lambda r: (r.time, r.seq))


def _exfil(store: EvidenceStore, denies: list[Record], suspects: tuple[str, ...]) -> list[Record]:
    """Successful connections, both ends' records, to where the same source was denied, or to a suspect."""
    denied_pairs = {(d.src_identity, d.dst_identity) for d in denies if d.kind.startswith("l4-")}
    return [
        r
        for r in store.select("kind = 'l4-allow'")
        if (r.src_identity, r.dst_identity) in denied_pairs or _namespace_of(r.dst_identity) in suspects
    ]


def _leaks(store: EvidenceStore, exfil_seqs: set[int]) -> list[Leak]:
    leaks = []
    for record in store.select("kind = 'tool-call' AND flags LIKE ?", (f"%{PII_FLAG}%",)):
        attrs = record.original().get("attributes") or {}
        try:
            arguments = json.loads(attrs.get("gen_ai.tool.call.arguments") or "{}")
        except ValueError:
            arguments = {}
        delivered = sorted(
            {str(other.dst_identity) for other, _ in related(store, record) if other.seq in exfil_seqs}
        )
        leaks.append(Leak(record, personal_data(arguments), delivered))
    return sorted(leaks, key=lambda x: (x.record.time, x.record.seq))


def _timeline(
    store: EvidenceStore, leaks: list[Leak], exfil: list[Record], denies: list[Record]
) -> list[Record]:
    """Changes and incidents in time order. An image's seeding is the baseline, shown only for images
    that were pushed over later (the digest the tag had before); routine pod starts and stops are left out."""
    events = store.select("source IN ('image', 'policy', 'alert', 'runtime')")
    pushed = {r.image for r in events if r.kind != SEEDED and r.source == "image"}
    kept = [
        r
        for r in events
        if (r.kind != SEEDED or r.image in pushed)
        and (r.source in TIMELINE_SOURCES or r.kind not in ROUTINE_RUNTIME)
    ]
    merged = {r.seq: r for r in [*kept, *(x.record for x in leaks), *exfil, *denies]}
    return sorted(merged.values(), key=lambda r: (r.time, r.seq))


def _running(
    store: EvidenceStore, files: ClusterFiles, register: list[dict[str, Any]]
) -> dict[str, str | None]:
    """Each entry's running digest: from the evidence (pushes and pod starts), else the registry's."""
    history = store.select(f"kind IN ({', '.join(repr(k) for k in (*PUSH_KINDS, *START_KINDS))})")
    tracker = DigestTracker(history, image_store_lookup(files.images))
    now = iso(datetime.now(UTC))
    running: dict[str, str | None] = {}
    for entry in register:
        namespace, _, deployment = str(entry.get("deployment", "")).partition("/")
        image = entry.get("image")
        digest = tracker.workload_at(namespace, deployment, image, now) if isinstance(image, str) else None
        tagged = entry.get("running")  # the registry's view: what the tag points at now
        if digest is None and isinstance(tagged, dict) and isinstance(tagged.get("digest"), str):
            digest = tagged["digest"]
        running[str(entry.get("name"))] = digest
    return running


async def read_register(
    files: ClusterFiles, registry_url: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """The Art. 28 entries, or none and the reason they could not be read."""
    try:
        return await register_entries(files, registry_url), None
    except RegisterError as exc:
        return [], str(exc)


def build_report(
    files: ClusterFiles,
    store: EvidenceStore | None = None,
    registry_url: str | None = None,
    suspects: tuple[str, ...] = (),
    register: list[dict[str, Any]] | None = None,
    register_error: str | None = None,
) -> DoraReport:
    """The report's content. Given `register`, the registry is not read (a caller in an event loop
    reads it with `read_register` first; `asyncio.run` cannot be nested)."""
    store = store or EvidenceStore.of(files)
    verification = store.verify()
    denies = sorted(store.select("kind LIKE '%-deny'"), key=lambda r: (r.time, r.seq))
    failures = sorted(store.select("kind IN (?, ?)", FAILURE_KINDS), key=lambda r: (r.time, r.seq))
    connections = _exfil(store, denies, suspects)
    exfil = _one_per_connection(connections)
    leaks = _leaks(store, {r.seq for r in connections})
    timeline = _timeline(store, leaks, exfil, denies)
    if register is None:
        register, register_error = asyncio.run(read_register(files, registry_url))
    incident = [r for r in timeline if r.source != "runtime" and r.kind != SEEDED] or timeline
    return DoraReport(
        generated=iso(datetime.now(UTC)),
        state=str(files.state),
        verification=verification,
        timeline=timeline[:MAX_TIMELINE],
        timeline_truncated=max(0, len(timeline) - MAX_TIMELINE),
        leaks=leaks,
        exfil=_group(exfil),
        blocked=_group(denies),
        failed=_group(failures),
        register=register,
        register_error=register_error,
        suspects=suspects,
        window=(incident[0].time, incident[-1].time) if incident else None,
        running=_running(store, files, register),
    )


@dataclass(frozen=True)
class ReportPaths:
    directory: Path
    markdown: Path
    html: Path
    json: Path


def default_directory(files: ClusterFiles) -> Path:
    return files.reports / datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def write_dora_report(
    files: ClusterFiles,
    out_dir: Path | None = None,
    registry_url: str | None = None,
    suspects: tuple[str, ...] = (),
    store: EvidenceStore | None = None,
    register: list[dict[str, Any]] | None = None,
) -> ReportPaths:
    """Write the report as Markdown, HTML and JSON into `out_dir` (default `<state>/reports/<UTC time>/`)."""
    return _write(build_report(files, store, registry_url, suspects, register), files, out_dir)


async def write_dora_report_async(
    files: ClusterFiles,
    out_dir: Path | None = None,
    registry_url: str | None = None,
    suspects: tuple[str, ...] = (),
    store: EvidenceStore | None = None,
) -> ReportPaths:
    """`write_dora_report` for callers already inside an event loop."""
    register, error = await read_register(files, registry_url)
    return _write(build_report(files, store, registry_url, suspects, register, error), files, out_dir)


class ReportNotWritten(UnavailableError, OSError):
    """The report's files could not be written (a full disk, say); none of them is left half-written."""


def _write(report: DoraReport, files: ClusterFiles, out_dir: Path | None) -> ReportPaths:
    directory = out_dir or default_directory(files)
    paths = ReportPaths(
        directory,
        directory / "dora-report.md",
        directory / "dora-report.html",
        directory / "dora-report.json",
    )
    written = {
        paths.markdown: markdown(report),
        paths.html: html(report),
        paths.json: json.dumps(report.to_dict(), indent=2, ensure_ascii=False),
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, text in written.items():
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        for path in written:  # no half-written report left to be read as a whole one
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        raise ReportNotWritten(
            f"cannot write the report into {directory} ({exc.strerror or exc}): "
            "free space there, or pass another --out"
        ) from exc
    return paths
