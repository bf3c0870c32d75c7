"""Act 3 and its receipts, for the fault tests: the change, the customer's prompt, and what must
not be lost across a kill (the reply, the attacker's count, the evidence chain with no gap)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from tests.session_cluster import Cluster
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, Record, ingest
from trustusbank.scenario import receipts
from trustusbank.scenario.cluster import Cluster as Scenario


def events(files: ClusterFiles, kind: str, process: str | None = None) -> list[dict[str, Any]]:
    """The runtime log's events of `kind` (every one for ""), of `process` if given."""
    found = [json.loads(line) for line in files.events.read_text().splitlines()]
    return [e for e in found if kind in ("", e["event"]) and process in (None, e.get("process"))]


def act_three(files: ClusterFiles) -> str:
    """Act 3's change as the demo makes it (`upgrade-banking-app`, `policies on`, each returning once
    in force), then the customer's prompt; returns the reply."""
    asyncio.run(receipts.defence_on(Scenario(files), progress=lambda _: None))
    return ask(files)


def ask(files: ClusterFiles) -> str:
    """The customer's Act 3 prompt (the seed's), through the chatbot as the page sends it."""
    answer = asyncio.run(Scenario(files).ask())
    assert answer.state == "completed", answer.status_message
    return answer.reply


def exfil_total(files: ClusterFiles) -> int:
    return Scenario(files).exfil_total()


@dataclass
class Before:
    """What was there before the kill: the evidence chain's records, the attacker's count."""

    records: list[Record]
    exfil: int
    time: float

    @classmethod
    def take(cls, files: ClusterFiles) -> Before:
        ingest(files)
        return cls(EvidenceStore.of(files).select(), exfil_total(files), time.time())


def nothing_lost(cluster: Cluster, before: Before, reply: str, kind: str, process: str) -> list[Record]:
    """The same reply to the same prompt, nothing at the attacker, the chain intact with no gap, and
    the crash recorded; returns the records added since `before`."""
    again = ask(cluster.files)
    assert again == reply, f"another reply after the kill:\n{again}\n-- before it:\n{reply}"
    assert exfil_total(cluster.files) == before.exfil, "the attacker received something"
    ingest(cluster.files)  # what `evidence ingest` does, then `evidence verify`
    store = EvidenceStore.of(cluster.files)
    verified = store.verify()
    assert verified.ok, verified.describe()
    last = before.records[-1].seq if before.records else 0
    kept = store.select("seq <= ?", (last,))
    assert [(r.seq, r.hash) for r in kept] == [(r.seq, r.hash) for r in before.records], "a gap"
    added = store.select("seq > ?", (last,))
    recorded = [r for r in added if r.kind == kind and process in r.summary]
    assert recorded, f"no {kind} event for {process} in the evidence store"
    return added
