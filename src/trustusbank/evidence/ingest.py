"""Incremental ingestion: new lines of the cluster's logs and spans become chained evidence records.

The store remembers, per file, how far it has read (and a fingerprint of the
file's first line, so a file that was replaced is read again from its start).
Only complete lines are taken; a line still being written is left for next time.
One ingest at a time holds the store's lock, so concurrent runs neither skip nor
duplicate a line. A batch is chained in time order. A line that is not JSON is
still recorded (kind `unreadable-line`): evidence is not dropped for its shape.

Not ingested: the ztunnel and waypoint spans (their access and request logs carry
the same facts and the trace ids that join them), and the pods' own stdout logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.errors import UnavailableError
from trustusbank.evidence import sources
from trustusbank.evidence.context import Cluster
from trustusbank.evidence.digests import PUSH_KINDS, START_KINDS, DigestTracker, image_store_lookup
from trustusbank.evidence.record import NewRecord, canonical, iso, parse_time
from trustusbank.evidence.store import EvidenceStore, Writer

log = logging.getLogger(__name__)

MAX_LINE = 4 * 1024 * 1024  # a longer line is recorded as unreadable rather than parsed


@dataclass(frozen=True)
class Family:
    """One kind of file: where it lives, what its lines mean, and where each line's time is."""

    directory: str  # "logs" or "traces", under the cluster directory
    pattern: str
    source: str
    parse: sources.Parser
    time_key: str = "time"


FAMILIES = (
    Family("logs", "ztunnel-*.jsonl", "ztunnel", sources.ztunnel),
    Family("logs", "waypoint-*.jsonl", "waypoint", sources.waypoint),
    Family("logs", "agent-*.jsonl", "agent", sources.agent_log),
    Family("logs", "runtime.jsonl", "runtime", sources.runtime_event),
    Family("logs", "alerts.jsonl", "alert", sources.alert),
    Family("logs", "mcp-guard.jsonl", "guard", sources.guard),
    Family("traces", "agent-*.jsonl", "agent-span", sources.agent_span, time_key="start_time"),
)


class NoClusterState(UnavailableError, RuntimeError):
    """There is nothing to ingest from: no cluster ever ran in this state directory."""


def has_cluster_state(files: ClusterFiles) -> bool:
    return files.topology.exists() or files.logs.is_dir() or files.evidence_db.exists()


def _generation(path: Path) -> str:
    with path.open("rb") as handle:
        first = handle.readline(64 * 1024)
    return hashlib.sha256(first).hexdigest()[:16]


def _new_lines(path: Path, start: int) -> tuple[list[tuple[int, bytes]], int]:
    """Complete lines from byte `start`, each with its offset, and where the next read begins."""
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read()
    lines, offset = [], start
    for chunk in data.splitlines(keepends=True):
        if not chunk.endswith(b"\n"):
            break  # still being written
        lines.append((offset, chunk))
        offset += len(chunk)
    return lines, offset


def _record(family: Family, origin: str, raw: bytes, cluster: Cluster, now: str) -> NewRecord | None:
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    data: Any = None
    if len(text) <= MAX_LINE:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if not isinstance(data, dict):
        return NewRecord(
            now, family.source, "unreadable-line", f"a line of {origin} is not a JSON object", origin,
            canonical({"raw": text[:MAX_LINE]}),
        )  # fmt: skip
    try:
        fields = family.parse(data, cluster)
    except Exception as exc:  # keep the line; say the parser could not read it
        log.warning("cannot interpret %s: %s", origin, exc)
        fields = {"kind": "uninterpreted", "summary": f"not understood: {type(exc).__name__}: {exc}"}
    fields.setdefault("source", family.source)
    fields.setdefault("kind", "event")
    fields.setdefault("summary", "")
    # Every field is TEXT in the store: hash what the store will hand back when the chain is verified.
    as_text: dict[str, Any] = {
        k: (v if v is None or isinstance(v, str) else canonical(v)) for k, v in fields.items()
    }
    stamp = parse_time(data.get(family.time_key)) or now
    return NewRecord(time=stamp, origin=origin, body=canonical(data), **as_text)


def _inputs(files: ClusterFiles) -> Iterator[tuple[Family, Path, str]]:
    """Every file ingest reads, with its family and its name in the store."""
    for family in FAMILIES:
        for path in files.outputs(family.directory, family.pattern):
            if path.is_file():
                yield family, path, path.relative_to(files.root).as_posix()


def held_back(files: ClusterFiles, store: EvidenceStore) -> dict[str, int]:
    """Files read up to an unfinished last line, with its length: taken once its writer ends it.

    Said out loud because a writer that died mid-line ends nothing: the next writer of that
    file does (`append_lines`), and until then the fragment is in the file, not in the chain.
    """
    positions = store.positions()
    out = {}
    for _, path, name in _inputs(files):
        known = positions.get(name)
        try:
            size, generation = path.stat().st_size, _generation(path)
        except FileNotFoundError:
            continue
        if known is not None and known[0] == generation and size > known[1]:
            out[name] = size - known[1]
    return out


def _read(files: ClusterFiles, writer: Writer, cluster: Cluster, now: str) -> list[NewRecord]:
    batch: list[NewRecord] = []
    for family, path, name in _inputs(files):
        generation = _generation(path)
        known = writer.position(name)
        size = path.stat().st_size
        start = known[1] if known and known[0] == generation and known[1] <= size else 0
        lines, end = _new_lines(path, start)
        for offset, raw in lines:
            record = _record(family, f"{name}#{generation}:{offset}", raw, cluster, now)
            if record is not None:
                batch.append(record)
        writer.set_position(name, generation, end)
    return batch


def ingest(files: ClusterFiles, store: EvidenceStore | None = None) -> int:
    """Append every new log line and span to the evidence chain; returns how many records were added."""
    if not has_cluster_state(files):
        raise NoClusterState(
            f"no cluster state under {files.root}: run `trustusbank up` first, or set TRUSTUSBANK_STATE_DIR"
        )
    store = store or EvidenceStore.of(files)
    cluster = Cluster.load(files.topology)
    now = iso(datetime.now(UTC))
    with store.writer() as writer:
        batch = sorted(_read(files, writer, cluster, now), key=lambda r: (r.time, r.origin))
        kinds = ", ".join(f"'{k}'" for k in (*PUSH_KINDS, *START_KINDS))
        history = [*writer.select(f"kind IN ({kinds})"), *batch]
        digests = DigestTracker(history, image_store_lookup(files.images))
        for record in batch:
            if not writer.has_origin(record.origin):
                writer.append(digests.fill(record))
        return len(writer.appended)
