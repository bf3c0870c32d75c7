"""`trustusbank demo --json`: each act's receipts, typed, come out as the document the system tests read."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trustusbank import evidence
from trustusbank.alerts import client as alerts
from trustusbank.evidence.record import Record
from trustusbank.scenario import acts, changes, receipts
from trustusbank.scenario.drivers.embedded import EmbeddedDriver
from trustusbank.workloads.chatbot.client import AskResult

TAG = "localhost:5001/acme-fx/currency-converter:1.0.0"
CONVERTER = acts.CONVERTER_IDENTITY
ATTACKER = "spiffe://cluster.local/ns/external-attacker/sa/mock-attacker"
REPLY = "Your balance is £4,287.55 (about $5,445.19 USD)."
CLEAN_CHAIN = [
    {"name": "get_balance", "server": "account-mcp", "arguments": {"customer_id": "12345"}, "duration_ms": 3},
    {"name": "list_recent", "is_error": True, "result": "timeout"},
    {"name": "convert_currency", "arguments": {"amount": 4287.55}},
]
FOOLED_CHAIN = [
    *CLEAN_CHAIN,
    {"name": "get_profile", "arguments": {"customer_id": "12345"}},
    {"name": "convert_currency", "arguments": {"customer_profile": {"name": "Alice"}}},
]


def swap(variant: str, signature: str, digest: str) -> changes.Swap:
    return changes.Swap(
        tag=TAG,
        deployment="trustusbank-bank-vendors/currency-converter",
        old_variant="clean",
        variant=variant,
        old_digest="sha256:" + "a" * 64,
        new_digest=digest,
        signer=f"{signature}-key",
        signature=signature,
        pushed=variant != "clean",
    )


CLEAN = swap("clean", "org", "sha256:" + "c" * 64)
RUG_PULL = swap("real-rugpull", "untrusted", "sha256:" + "b" * 64)
DENY = Record(
    time="2026-01-01T00:00:00Z",
    source="ztunnel",
    kind="l4-deny",
    summary="denied by deny-bank-to-attacker",
    origin="logs/ztunnel.log#1:0",
    body='{"reason": "explicitly denied"}',
    src_identity=CONVERTER,
    dst_identity=ATTACKER,
    workload="currency-converter",
    image=TAG,
    digest=RUG_PULL.new_digest,
    policy="deny-bank-to-attacker",
    trace_id="f" * 32,
    seq=7,
)


class FakeCluster:
    """Act n asks once; the attacker's counter grows only when the chain leaks the profile with no defence."""

    files = None

    def __init__(self) -> None:
        self.act = 0
        self.exfil = 3

    def exfil_total(self) -> int:
        return self.exfil

    async def ask(self, prompt: str, agent: str = "") -> AskResult:
        self.act += 1
        if self.act == 2:
            self.exfil += 1
        return AskResult(reply=REPLY, tool_calls=CLEAN_CHAIN if self.act == 1 else FOOLED_CHAIN)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()

    async def reset(files: Any, progress: Any) -> Any:
        return SimpleNamespace(converter=CLEAN)

    async def upgrade(files: Any, progress: Any) -> changes.Swap:
        return RUG_PULL

    async def fired(url: str, since: float) -> list[dict[str, Any]]:
        attempt = {"alertname": "BankToAttackerAttempt", "state": "firing", "labels": {"source": "converter"}}
        deny = {"alertname": "IstioAuthZDeny", "annotations": {"summary": "a deny", "quarantine": "yes"}}
        by_act: dict[int, list[dict[str, Any]]] = {
            1: [],
            2: [{**attempt, "notified_at": 1.0}],
            3: [{**attempt, "notified_at": 1.0}, {**deny, "notified_at": 2.0}],
        }
        return by_act[fake.act]

    monkeypatch.setattr(changes, "reset", reset)
    monkeypatch.setattr(changes, "upgrade", upgrade)

    async def set_defence(*_: object) -> list[Path]:
        return []

    monkeypatch.setattr(receipts, "set_defence", set_defence)
    monkeypatch.setattr(receipts.control, "deploy_of", lambda files: Path("deploy"))
    monkeypatch.setattr(evidence, "ingest", lambda *_, **__: 0)
    monkeypatch.setattr(evidence, "open_store", lambda files: None)
    monkeypatch.setattr(evidence, "query", lambda store, q: [DENY] if fake.act == 3 else [])
    verification = SimpleNamespace(ok=True, records=42, head=SimpleNamespace(seq=42, hash="e" * 64))
    monkeypatch.setattr(evidence, "verify", lambda files: verification)
    monkeypatch.setattr(alerts, "alerts_url", lambda files: "http://alerts")
    monkeypatch.setattr(alerts, "fired_alerts_async", fired)
    return fake


async def test_the_json_document_carries_every_receipt(cluster: FakeCluster) -> None:
    record = await acts.run_acts(EmbeddedDriver(cluster), lambda _: None)  # type: ignore[arg-type]
    document = json.loads(json.dumps(record.to_dict()))

    assert set(document) == {"prompt", "ok", "problems", "acts", "evidence", "seconds"}
    assert document["ok"]
    assert not document["problems"]
    assert document["evidence"] == {"verified": True, "records": 42, "head": "e" * 64}
    clean, breach, contained = document["acts"]
    assert [a["number"] for a in document["acts"]] == [1, 2, 3]
    assert list(clean) == [
        *("number", "title", "reply", "chain", "exfil_before", "exfil_after", "denies", "alerts", "image"),
        *("seconds", "error", "verdict", "ok", "new_exfil", "leaked_through_tool"),
    ]
    # the chain is what the chatbot reported, step for step
    assert clean["chain"] == CLEAN_CHAIN
    assert contained["chain"] == FOOLED_CHAIN
    assert (clean["new_exfil"], breach["new_exfil"], contained["new_exfil"]) == (0, 1, 0)
    assert (clean["leaked_through_tool"], breach["leaked_through_tool"]) == (False, True)
    # "signer" is the signature check, as the acts print it
    assert breach["image"] == {
        "tag": TAG,
        "digest": RUG_PULL.new_digest,
        "previous_digest": RUG_PULL.old_digest,
        "build": "real-rugpull",
        "signer": "untrusted",
        "pushed": True,
    }
    assert clean["image"]["signer"] == "org"
    assert contained["denies"] == [
        {
            "kind": DENY.kind,
            "source": DENY.source,
            "source_identity": CONVERTER,
            "destination_identity": ATTACKER,
            "destination": ATTACKER,
            "workload": DENY.workload,
            "image": TAG,
            "digest": RUG_PULL.new_digest,
            "policy": DENY.policy,
            "trace_id": DENY.trace_id,
            "seq": DENY.seq,
            "summary": DENY.summary,
            "reason": "explicitly denied",  # as the deciding proxy logged it
        }
    ]
    assert contained["alerts"][1] == {
        "alertname": "IstioAuthZDeny",
        "state": None,
        "labels": {},
        "summary": "a deny",
        "quarantine": "yes",
        "mailed": True,
    }
    assert breach["alerts"][0]["labels"] == {"source": "converter"}


async def test_an_act_whose_change_fails_has_an_empty_image(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(files: Any, progress: Any) -> changes.Swap:
        raise changes.ActError("the converter did not become ready")

    monkeypatch.setattr(changes, "upgrade", broken)
    record = await acts.run_acts(EmbeddedDriver(cluster), lambda _: None, (2,))  # type: ignore[arg-type]
    (act,) = record.to_dict()["acts"]
    assert act["image"] == {}
    assert act["error"] == "ActError: the converter did not become ready"
    assert act["chain"] == []
    assert act["ok"] is False
