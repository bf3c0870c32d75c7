"""`reset` puts the bank's data back to its seed: a transaction flagged by a demo is unflagged."""

from __future__ import annotations

import json

from tests.system.conftest import Cluster
from tests.system.test_waypoint import mcp

FRAUD_POD = "trustusbank-bank-agents/fraud-bot"
TXN = "txn-003"


def _flagged(cluster: Cluster) -> bool:
    details = mcp(cluster, FRAUD_POD, "transaction", "get_details", {"txn_id": TXN})
    assert isinstance(details, dict), details
    assert not details.get("error"), details
    return bool(details["data"]["flagged"])


def test_reset_unflags_what_a_demo_flagged(cluster: Cluster) -> None:
    flagged = mcp(
        cluster, FRAUD_POD, "transaction", "flag_suspicious", {"txn_id": TXN, "reason": "as demo a2a does"}
    )
    assert isinstance(flagged, dict), flagged
    assert not flagged.get("error"), flagged
    assert _flagged(cluster)

    reset = cluster.cli("reset", "--json", timeout=120)
    assert reset.returncode == 0, reset.stderr
    report = json.loads(reset.stdout)
    bank = next(s for s in report["steps"] if s["name"] == "bank data")
    assert bank["changed"], bank
    assert "trustusbank-bank-mcp/transaction-mcp" in report["bank"]
    assert not _flagged(cluster), "reset left the demo's flag in place"

    again = cluster.cli("reset", "--json", timeout=120)
    assert again.returncode == 0, again.stderr
    assert not json.loads(again.stdout)["changed"], "a second reset found something to do"
