"""The evidence trail: an append-only, hash-chained store of what the cluster did, and reports from it.

`ingest` turns the cluster's logs and spans into chained records, `verify` proves the
chain intact (or names the first record that is not), `query`, `trace` and `explain`
answer an auditor's questions, and `write_dora_report` writes the Art. 17 incident
evidence and the Art. 28 register.
"""

from __future__ import annotations

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence.ingest import NoClusterState, has_cluster_state, held_back, ingest
from trustusbank.evidence.query import Query, QueryError, TraceView, explain, query, trace
from trustusbank.evidence.record import Record
from trustusbank.evidence.report import (
    DoraReport,
    ReportPaths,
    build_report,
    write_dora_report,
    write_dora_report_async,
)
from trustusbank.evidence.store import EvidenceStore, Head, Verification


def open_store(files: ClusterFiles) -> EvidenceStore:
    return EvidenceStore.of(files)


def verify(files: ClusterFiles, anchor: Head | None = None) -> Verification:
    return EvidenceStore.of(files).verify(anchor)


__all__ = [
    "DoraReport",
    "EvidenceStore",
    "Head",
    "NoClusterState",
    "Query",
    "QueryError",
    "Record",
    "ReportPaths",
    "TraceView",
    "Verification",
    "build_report",
    "explain",
    "has_cluster_state",
    "held_back",
    "ingest",
    "open_store",
    "query",
    "trace",
    "verify",
    "write_dora_report",
    "write_dora_report_async",
]
