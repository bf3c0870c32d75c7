"""`trustusbank demo --json` on the running cluster: the three acts tell the seed's story, with receipts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import Cluster

CONVERTER = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"


@pytest.fixture(scope="module")
def story(cluster: Cluster) -> Iterator[dict[str, Any]]:
    done = cluster.cli("demo", "--json", timeout=300)
    try:
        assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
        yield {**json.loads(done.stdout), "_stderr": done.stderr}
    finally:
        reset = cluster.cli("reset", timeout=120)
        assert reset.returncode == 0, reset.stderr


def test_same_reply_in_all_three_acts(story: dict[str, Any]) -> None:
    acts = story["acts"]
    assert [a["number"] for a in acts] == [1, 2, 3]
    assert len({a["reply"] for a in acts}) == 1
    assert "$5,445.19" in acts[0]["reply"]


def test_exfil_only_in_act_two_through_a_tool_argument(story: dict[str, Any]) -> None:
    clean, breach, contained = story["acts"]
    assert (clean["new_exfil"], contained["new_exfil"]) == (0, 0)
    assert breach["new_exfil"] >= 1
    assert breach["leaked_through_tool"], "the model is fooled"
    assert contained["leaked_through_tool"], "fooled again: the runtime makes the difference"
    assert not clean["leaked_through_tool"]


def test_rug_pull_changes_the_digest_not_the_tag(story: dict[str, Any]) -> None:
    clean, breach, _ = story["acts"]
    assert (
        clean["image"]["tag"] == breach["image"]["tag"] == "localhost:5001/acme-fx/currency-converter:1.0.0"
    )
    assert clean["image"]["digest"] != breach["image"]["digest"]
    assert (clean["image"]["signer"], breach["image"]["signer"]) == ("org", "untrusted")


def test_act_three_denies_the_converter_by_identity_and_digest_and_alerts(story: dict[str, Any]) -> None:
    _, breach, contained = story["acts"]
    named = [d for d in contained["denies"] if d["source_identity"] == CONVERTER]
    assert named, contained["denies"]
    assert named[0]["digest"] == breach["image"]["digest"]
    fired = {a["alertname"]: a for a in contained["alerts"]}
    assert {"IstioAuthZDeny", "BankToAttackerAttempt"} <= set(fired)
    assert fired["IstioAuthZDeny"]["mailed"]
    assert fired["BankToAttackerAttempt"]["mailed"]
    assert "BankToAttackerAttempt" in {a["alertname"] for a in breach["alerts"]}


def test_evidence_chain_is_intact(story: dict[str, Any]) -> None:
    assert story["ok"]
    assert not story["problems"]
    assert story["evidence"]["verified"]
    assert story["evidence"]["records"] > 0


def test_the_json_says_how_the_pods_were_isolated(story: dict[str, Any], cluster: Cluster) -> None:
    isolation = story["isolation"]
    assert isolation == cluster.status()["isolation"]
    assert isolation["mode"] in ("namespaces", "cooperative")
    if isolation["mode"] == "cooperative":
        assert "NOT a security boundary" in isolation["summary"]


def test_progress_is_shown_when_output_is_not_a_terminal(story: dict[str, Any]) -> None:
    """Captured (as in CI or `| tee`), a spinner draws nothing: the steps come as lines instead."""
    assert "… running the acts" in story["_stderr"]
