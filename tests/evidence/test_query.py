"""The auditor's questions: denies by time, identity, image and digest; the records behind one deny."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.evidence.story import ATTACKER_ID, CONVERTER, CONVERTER_IMAGE, RUGPULL, SUPPORT_BOT, Story
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, Query, QueryError, explain, ingest, query, trace
from trustusbank.evidence.query import when


@pytest.fixture
def ingested(story: Story, files: ClusterFiles, store: EvidenceStore) -> EvidenceStore:
    ingest(files, store)
    return store


def kinds(records: list) -> list[str]:
    return [r.kind for r in records]


def test_denies_in_a_time_window(ingested: EvidenceStore) -> None:
    assert kinds(query(ingested, Query(denies=True))) == ["l4-deny", "mcp-deny", "a2a-deny"]
    assert kinds(query(ingested, Query(denies=True, since="10m"))) == ["l4-deny", "mcp-deny", "a2a-deny"]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert query(ingested, Query(denies=True, since=tomorrow.isoformat())) == []
    [deny] = query(ingested, Query(kinds=("l4-deny",)))
    assert kinds(query(ingested, Query(denies=True, until=deny.time))) == ["l4-deny"]
    assert kinds(query(ingested, Query(denies=True, since=deny.time, until=deny.time))) == ["l4-deny"]


def test_denies_by_identity_image_and_digest(ingested: EvidenceStore) -> None:
    for who in (CONVERTER, "trustusbank-bank-vendors/currency-converter"):
        assert kinds(query(ingested, Query(denies=True, identity=who))) == ["l4-deny"]
    assert kinds(query(ingested, Query(denies=True, identity=SUPPORT_BOT))) == ["mcp-deny"]
    assert kinds(query(ingested, Query(denies=True, identity=ATTACKER_ID))) == ["l4-deny"]  # as destination
    assert kinds(query(ingested, Query(denies=True, image="acme-fx/currency-converter"))) == ["l4-deny"]
    assert kinds(query(ingested, Query(denies=True, image=CONVERTER_IMAGE))) == ["l4-deny"]
    assert kinds(query(ingested, Query(denies=True, digest=RUGPULL[:15]))) == ["l4-deny"]
    assert kinds(query(ingested, Query(denies=True, digest=RUGPULL.removeprefix("sha256:")[:8]))) == [
        "l4-deny"
    ]
    assert query(ingested, Query(denies=True, digest="sha256:c1c1")) == []  # the clean build was never denied


def test_by_kind_source_and_latest_n(ingested: EvidenceStore) -> None:
    calls = query(ingested, Query(kinds=("tool-call",), sources=("agent-span",)))
    assert [c.tool for c in calls] == [
        "convert_currency",
        "get_profile",
        "convert_currency",
        "convert_currency",
    ]
    assert query(ingested, Query(kinds=("tool-call",), limit=1)) == calls[-1:]
    assert kinds(query(ingested, Query(sources=("image", "policy")))) == [
        "image-seeded",
        "image-seeded",
        "image-pushed",
        "manifest-applied",
    ]


def test_bad_filters_are_errors() -> None:
    with pytest.raises(QueryError):
        when("yesterday-ish")
    with pytest.raises(QueryError):
        Query(identity="converter").where()
    assert when("1h", datetime(2026, 1, 1, 12, tzinfo=UTC)) == "2026-01-01T11:00:00.000000Z"


def test_the_trace_of_the_act3_answer_reaches_the_deny(story: Story, ingested: EvidenceStore) -> None:
    view = trace(ingested, story.traces["3"])
    records = [x.record for x in view.records]
    assert [r.time for r in records] == sorted(r.time for r in records)
    assert kinds(records) == [
        "agent-invoke",
        "tool-call",
        "mcp-allow",
        "l4-deny",
        "l4-refused",
    ]
    links = {x.record.kind: x.link for x in view.records}
    assert links["tool-call"].startswith("trace ")
    assert "during tool call" in links["l4-deny"] or "paired" in links["l4-deny"]
    assert story.connection_traces["3"] in view.trace_ids
    [deny] = view.denies
    assert (deny.src_identity, deny.digest) == (CONVERTER, RUGPULL)


def test_explaining_a_deny_finds_the_tool_call_that_carried_the_profile(
    story: Story, ingested: EvidenceStore
) -> None:
    [deny] = query(ingested, Query(kinds=("l4-deny",)))
    view = explain(ingested, deny.seq)
    by_kind = {x.record.kind: x for x in view.records}
    assert by_kind["l4-deny"].link == "the record asked about"
    assert "paired deny" in by_kind["l4-refused"].link
    call = by_kind["tool-call"]
    assert call.record.trace_id == story.traces["3"]
    assert "customer_profile" in call.record.summary
    assert "running when connection" in call.link
    assert "agent-invoke" in by_kind  # and the rest of the agent's trace


def test_act2_trace_shows_the_exfil_connection(story: Story, ingested: EvidenceStore) -> None:
    view = trace(ingested, story.traces["2"])
    allowed = [x.record for x in view.records if x.record.kind == "l4-allow"]
    assert {r.dst_identity for r in allowed} == {ATTACKER_ID}
    assert {r.trace_id for r in allowed} == {story.connection_traces["2"]}
    assert len(allowed) == 2  # both ends of the one connection
    assert not view.denies


def test_unknown_trace_or_record(ingested: EvidenceStore) -> None:
    assert trace(ingested, "ab" * 16).records == []
    with pytest.raises(QueryError):
        trace(ingested, "not-a-trace")
    with pytest.raises(QueryError):
        explain(ingested, 10_000)
