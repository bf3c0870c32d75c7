"""Ingestion: each writer's lines become records with the fields an auditor asks by, once each."""

from __future__ import annotations

import json

import pytest

from tests.evidence.story import (
    ATTACKER_ID,
    CLEAN,
    CONVERTER,
    CONVERTER_IMAGE,
    DENY_POLICY,
    EVIL_TOOL,
    RUGPULL,
    SUPPORT_BOT,
    Story,
)
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, NoClusterState, ingest
from trustusbank.evidence.sources import PII_FLAG
from trustusbank.mesh.guard.evidence import LOG_NAME, GuardEvidence, GuardMetrics
from trustusbank.mesh.guard.wire import Exchange


@pytest.fixture
def ingested(story: Story, files: ClusterFiles, store: EvidenceStore) -> EvidenceStore:
    ingest(files, store)
    return store


def test_the_act3_deny_names_the_offender_its_image_and_the_digest_it_ran(ingested: EvidenceStore) -> None:
    [deny] = ingested.select("kind = 'l4-deny'")
    assert deny.source == "ztunnel"
    assert (deny.src_identity, deny.dst_identity) == (CONVERTER, ATTACKER_ID)
    assert (deny.workload, deny.namespace) == ("currency-converter", "trustusbank-bank-vendors")
    assert deny.policy == DENY_POLICY
    assert deny.image == CONVERTER_IMAGE
    assert deny.digest == RUGPULL
    assert "policy rejection" in deny.original()["error"]
    [refused] = ingested.select("kind = 'l4-refused'")
    assert refused.original()["direction"] == "outbound"
    assert refused.trace_id


def test_digests_follow_the_push_and_the_restart(story: Story, ingested: EvidenceStore) -> None:
    """Act 1's connection ran the clean build, Act 2's the rug-pulled one: same tag, different digest."""
    by_trace = {r.trace_id: r for r in ingested.select("kind = 'l4-allow'")}
    act1, act2 = by_trace[story.connection_traces["1"]], by_trace[story.connection_traces["2"]]
    assert act1.image == act2.image == CONVERTER_IMAGE
    assert (act1.digest, act2.digest) == (CLEAN, RUGPULL)
    [push] = ingested.select("kind = 'image-pushed'")
    assert (push.source, push.image, push.digest) == ("image", CONVERTER_IMAGE, RUGPULL)
    [restart] = ingested.select("kind = 'rollout-restarted'")
    assert restart.digest == CLEAN  # the old pod was still running when the restart began


def test_tool_calls_carry_the_trace_the_arguments_and_the_leak_flag(
    story: Story, ingested: EvidenceStore
) -> None:
    calls = ingested.select("kind = 'tool-call'")
    assert [c.tool for c in calls] == [
        "convert_currency",
        "get_profile",
        "convert_currency",
        "convert_currency",
    ]
    assert {c.source for c in calls} == {"agent-span"}
    assert {c.src_identity for c in calls} == {SUPPORT_BOT}
    leaked = [c for c in calls if c.flags and PII_FLAG in c.flags]
    assert [c.trace_id for c in leaked] == [story.traces["2"], story.traces["3"]]
    assert leaked[0].dst_identity == CONVERTER
    assert "customer_profile" in leaked[0].summary
    assert "alice@example.com" not in leaked[0].summary
    arguments = json.loads(leaked[0].original()["attributes"]["gen_ai.tool.call.arguments"])
    assert arguments["customer_profile"]["email"] == "alice@example.com"  # the evidence keeps it all


def test_waypoint_agent_and_change_events_are_classified(ingested: EvidenceStore) -> None:
    [mcp_deny] = ingested.select("kind = 'mcp-deny'")
    assert (mcp_deny.tool, mcp_deny.src_identity, mcp_deny.workload) == (
        EVIL_TOOL,
        SUPPORT_BOT,
        "support-bot",
    )
    [a2a] = ingested.select("kind = 'a2a-deny'")
    assert a2a.src_identity == "spiffe://cluster.local/ns/trustusbank-bank-frontend/sa/chatbot"
    assert a2a.dst_identity == "spiffe://cluster.local/ns/trustusbank-bank-agents/sa/fraud-bot"
    assert (a2a.policy, a2a.workload) == ("fraud-bot-callers", "chatbot")
    [applied] = ingested.select("kind = 'manifest-applied'")
    assert (applied.source, applied.policy) == ("policy", DENY_POLICY)
    assert len(ingested.select("source = 'waypoint' AND kind = 'mcp-allow'")) == 4


def test_ingest_is_incremental_and_idempotent(
    story: Story, files: ClusterFiles, store: EvidenceStore
) -> None:
    first = ingest(files, store)
    assert first == store.count() > 20
    assert ingest(files, store) == 0

    story.asides()
    assert ingest(files, store) == 2
    assert ingest(files, store) == 0
    assert store.verify().ok


def test_a_line_still_being_written_waits_for_its_end(files: ClusterFiles, store: EvidenceStore) -> None:
    files.make()
    with files.events.open("a") as out:
        out.write(json.dumps({"time": 1.5, "event": "crashed", "process": "ns/pod-0"}) + "\n")
        out.write('{"time": 2.5, "event": "cra')
    assert ingest(files, store) == 1
    with files.events.open("a") as out:
        out.write('shed", "process": "ns/pod-1"}\n')
    assert ingest(files, store) == 1
    assert [r.summary for r in store.select()] == ["crashed: process=ns/pod-0", "crashed: process=ns/pod-1"]


def test_a_replaced_file_is_read_from_its_start(files: ClusterFiles, store: EvidenceStore) -> None:
    files.make()
    files.events.write_text(json.dumps({"time": 1.0, "event": "one"}) + "\n")
    assert ingest(files, store) == 1
    files.events.write_text(json.dumps({"time": 2.0, "event": "two"}) + "\n")
    assert ingest(files, store) == 1
    assert [r.kind for r in store.select()] == ["one", "two"]


def test_an_unreadable_line_is_kept_not_dropped(files: ClusterFiles, store: EvidenceStore) -> None:
    files.make()
    files.access_log("trustusbank-worker").write_text("not json at all\n")
    assert ingest(files, store) == 1
    [record] = store.select()
    assert (record.source, record.kind) == ("ztunnel", "unreadable-line")
    assert record.original() == {"raw": "not json at all"}


def test_no_cluster_state_is_a_clear_error(files: ClusterFiles) -> None:
    with pytest.raises(NoClusterState, match="trustusbank up"):
        ingest(files)


def test_odd_field_types_in_a_line_still_verify(files: ClusterFiles, store: EvidenceStore) -> None:
    """A log line is data: numbers where names belong must not make an honest chain fail to verify."""
    files.make()
    line = {
        "time": "2026-01-01T00:00:00Z",
        "src.workload": 7,
        "src.namespace": ["x"],
        "dst.addr": "1.2.3.4:80",
    }
    files.access_log("trustusbank-worker").write_text(json.dumps(line) + "\n")
    assert ingest(files, store) == 1
    [record] = store.select()
    assert (record.workload, record.namespace) == ("7", '["x"]')
    assert store.verify().ok


def test_alerts_are_evidence_with_the_offender(ingested: EvidenceStore) -> None:
    [fired] = ingested.select("kind = 'alert-fired'")
    assert (fired.source, fired.src_identity, fired.workload) == ("alert", CONVERTER, "currency-converter")
    assert fired.summary.startswith("IstioAuthZDeny firing")


def test_the_guards_masks_drifts_and_refusals_are_evidence(story: Story, files: ClusterFiles) -> None:
    logs = ClusterFiles.pod_outputs(files.pod_dir("trustusbank-platform", "mcp-guard-0"))["logs"]
    evidence = GuardEvidence(logs / LOG_NAME, GuardMetrics())
    asked = Exchange("currency-converter", SUPPORT_BOT, "")
    evidence.record(
        asked,
        rule="tool-pin",
        action="mask",
        tool="convert_currency",
        reason="schema",
        sha256="ab",
        drift="schema",
    )
    evidence.record(
        asked, rule="quarantine", action="mask", tool="convert_currency", reason="tag", sha256="cd"
    )
    evidence.record(
        asked, rule="data-flow", action="reject", tool="convert_currency", reason="profile", sha256="ef"
    )
    store = EvidenceStore.of(files)
    ingest(files, store)
    found = {r.kind: r for r in store.select("source = 'guard'")}
    assert set(found) == {"tool-drift", "guard-mask", "guard-reject"}
    assert found["tool-drift"].policy == "mcp-guard/tool-pin"
    assert (found["guard-reject"].src_identity, found["guard-reject"].tool) == (
        SUPPORT_BOT,
        "convert_currency",
    )
    assert not any(r.is_deny for r in found.values())  # the waypoint's line is the deny; not counted twice
    assert store.verify().ok
