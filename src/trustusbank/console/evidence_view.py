"""What the dashboard reads from the evidence store: denies, the converter's starts, one record.

Where Grafana on a cluster reads Loki (ztunnel's access log) or kube-state-metrics (the digest
a pod runs), the embedded console has neither; the evidence store holds the same facts, from
the same log lines, hash-chained. Every read first ingests what the cluster wrote since the
last one (incremental, under the store's lock), so a deny a second old is on the page.

A deny's row links to its trace: its own trace id, or, for a destination's L4 deny (decided
before any trace exists), the traces `explain` joins to it (the source's refusal, the tool
call that was running). Store access is synchronous SQLite: callers run it in a thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.errors import TrustusbankError
from trustusbank.evidence import EvidenceStore, Query, Record, TraceView, explain, ingest, open_store, query

ROWS = 100  # the latest N of a table; the page says when more matched


@dataclass(frozen=True)
class EvidenceRow:
    record: Record
    trace_ids: tuple[str, ...]  # its own, else those explain() joins to it


@dataclass(frozen=True)
class Rows:
    rows: list[EvidenceRow]  # newest first
    more: bool  # more matched than are shown


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class EvidenceReader:
    def __init__(self, files: ClusterFiles) -> None:
        self.files = files
        self._store: EvidenceStore | None = None
        self._ingesting = threading.Lock()

    @property
    def store(self) -> EvidenceStore:
        if self._store is None:
            self._store = open_store(self.files)
        return self._store

    def refresh(self) -> str | None:
        """Ingest what was written since the last read; what went wrong, if anything (the page says it)."""
        with self._ingesting:
            try:
                ingest(self.files, self.store)
            except TrustusbankError as exc:
                return f"the evidence store was not brought up to date: {exc}"
        return None

    def _rows(self, records: list[Record]) -> Rows:
        shown = records[-ROWS:]
        rows = [EvidenceRow(r, self._traces(r)) for r in reversed(shown)]
        return Rows(rows, len(records) > len(shown))

    def _traces(self, record: Record) -> tuple[str, ...]:
        if record.trace_id:
            return (record.trace_id,)
        return tuple(explain(self.store, record.seq).trace_ids)

    def denies(
        self, start: float, end: float, kinds: tuple[str, ...] = (), source_identity: str | None = None
    ) -> Rows:
        """Denies in [start, end] (of `kinds`, if given; by one offending identity, if given)."""
        found = query(self.store, Query(since=_moment(start), until=_moment(end), denies=True, kinds=kinds))
        if source_identity is not None:
            found = [r for r in found if r.src_identity == source_identity]
        return self._rows(found)

    def deny_identities(self, start: float, end: float, kinds: tuple[str, ...]) -> set[str]:
        found = query(self.store, Query(since=_moment(start), until=_moment(end), denies=True, kinds=kinds))
        return {r.src_identity for r in found if r.src_identity}

    def workload_images(self, namespace: str, workload: str, end: float) -> Rows:
        """A workload's pod starts up to `end`, each with the digest it ran, and its image tag's pushes."""
        starts = [
            r
            for r in query(self.store, Query(until=_moment(end), kinds=("started",), workload=workload))
            if r.namespace == namespace
        ]
        images = {r.image for r in starts if r.image}
        pushes = [
            r
            for r in query(self.store, Query(until=_moment(end), kinds=("image-seeded", "image-pushed")))
            if r.image in images
        ]
        return self._rows(sorted([*starts, *pushes], key=lambda r: (r.time, r.seq)))

    def record(self, seq: int) -> TraceView:
        """The record and the records behind it (`explain`); QueryError when there is no such record."""
        return explain(self.store, seq)
