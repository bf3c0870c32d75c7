"""The policy follow-on demos (`rate-limit`, `live-policy`, `l7-block`) on the shared embedded cluster.

Each demo is run as `trustusbank demo <name>` runs it, and its outcome is checked
against what it claims; each must leave the cluster as it found it. Recording of
`apply`/`delete` (who changed what) is checked on its own, without a cluster.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

from tests.paths import DEPLOY
from tests.system.conftest import Cluster as ClusterFixture
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.apply import applied, apply, delete
from trustusbank.scenario.cluster import Cluster
from trustusbank.scenario.followups import runner

SUPPORT_BOT = "spiffe://cluster.local/ns/trustusbank-bank-agents/sa/support-bot"

POLICY = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: test-recorded-change
  namespace: trustusbank-bank-vendors
  labels:
    dora.incident-id: INC-20260101-042
spec:
  selector:
    matchLabels:
      app: currency-converter
  action: DENY
  rules:
    - from:
        - source:
            namespaces: ["external-attacker"]
"""


def _events(files: ClusterFiles) -> list[dict]:
    return [json.loads(line) for line in files.events.read_text().splitlines() if line.strip()]


def test_apply_and_delete_record_who_changed_what(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path / "state")
    source = tmp_path / "test-recorded-change.yaml"
    source.write_text(POLICY)
    digest = hashlib.sha256(POLICY.encode()).hexdigest()
    apply(files, DEPLOY, [source])
    delete(files, [source])
    applied_event, deleted_event = _events(files)
    for event, kind in ((applied_event, "manifest-applied"), (deleted_event, "manifest-deleted")):
        assert event["event"] == kind
        assert event["actor"] == getpass.getuser()
        assert (event["file"], event["sha256"]) == ("test-recorded-change.yaml", digest)
        assert event["objects"] == [
            {
                "kind": "AuthorizationPolicy",
                "name": "test-recorded-change",
                "namespace": "trustusbank-bank-vendors",
                "labels": {"dora.incident-id": "INC-20260101-042"},
            }
        ]
        assert event["labels"] == {"dora.incident-id": "INC-20260101-042"}
    assert applied_event["time"] <= deleted_event["time"]
    assert applied(files) == []


def _demo_cluster(cluster: ClusterFixture) -> tuple[Cluster, list[str]]:
    return Cluster(cluster.files), [p.name for p in applied(cluster.files)]


async def test_rate_limit_demo_counts_ten_admitted_and_twenty_limited(cluster: ClusterFixture) -> None:
    demo, before = _demo_cluster(cluster)
    result = await runner("rate-limit")(demo, lambda _: None)
    assert result.ok, result.problems
    # agentgateway's bucket for 5/minute + burst 5 holds 10 tokens: 30 quick calls → 10 admitted.
    assert result.data["status_counts"] == {"200": 10, "429": 20}
    assert result.data["recorded_counts"] == result.data["status_counts"]
    limits = result.data["effective_limits"]
    assert "bucket of 10" in limits["/mcp/account"]
    assert limits["/mcp/transaction"] != limits["/mcp/account"], "other routes keep the Gateway's bucket"
    assert [p.name for p in applied(cluster.files)] == before


async def test_l7_block_stops_the_leaking_call_at_the_waypoint(cluster: ClusterFixture) -> None:
    demo, before = _demo_cluster(cluster)
    exfil = demo.exfil_total()
    result = await runner("l7-block")(demo, lambda _: None)
    assert result.ok, result.problems
    deny = result.data["deny"]
    assert (deny["decision"], deny["http.status"], deny["src.identity"]) == ("deny", 403, SUPPORT_BOT)
    assert "incident-block-convert-currency" in deny["reason"]
    assert result.data["after_leaking_call"] == {"converter_requests": 0, "connections": 0, "exfil": 0}
    codes = {name: {f["code"] for f in found} for name, found in result.data["lint"].items()}
    assert "istio-deny-rule-broadened" in codes["l7-precall-block.yaml"]
    assert "agw-post-request-attribute" in codes["allow-conversion-without-profile.yaml"]
    assert demo.exfil_total() == exfil
    assert [p.name for p in applied(cluster.files)] == before


async def test_live_policy_is_obeyed_without_restart_and_recorded(cluster: ClusterFixture) -> None:
    demo, before = _demo_cluster(cluster)
    result = await runner("live-policy")(demo, lambda _: None)
    assert result.ok, result.problems
    assert result.data["pickup_seconds"] is not None
    assert result.data["reply_during"] != result.data["reply_before"]
    assert {
        "spiffe://cluster.local/ns/trustusbank-platform/sa/trustusbank-agentgw",
        SUPPORT_BOT,
    } <= set(result.data["deny_sources"])
    kinds = [e["event"] for e in result.data["events"]]
    assert kinds == ["manifest-applied", "manifest-deleted"]
    assert all(e["labels"] == {"dora.incident-id": result.data["incident_id"]} for e in result.data["events"])
    assert [p.name for p in applied(cluster.files)] == before
