"""The DORA report: Art. 17 incident evidence from the store, Art. 28 register from the registry's data."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.evidence.story import (
    ATTACKER,
    ATTACKER_ID,
    CONVERTER,
    CONVERTER_IMAGE,
    DENY_POLICY,
    EVIL_TOOL,
    RUGPULL,
    Story,
)
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, build_report, ingest, write_dora_report

REGISTER: list[dict[str, Any]] = [
    {
        "name": "acme-fx/currency-converter",
        "publisher": "ACME FX Ltd <b>bold</b>",
        "version": "1.0.0",
        "classification": "third-party",
        "deployment": "trustusbank-bank-vendors/currency-converter",
        "image": CONVERTER_IMAGE,
        "spiffe_id": CONVERTER,
        "pinned": {"digest": "sha256:" + "c1" * 32, "tool_list_hash": "sha256:" + "ee" * 32},
        "signature": {"status": "untrusted"},
    }
]


@pytest.fixture
def ingested(story: Story, files: ClusterFiles, store: EvidenceStore) -> EvidenceStore:
    ingest(files, store)
    return store


def test_the_incident_content(ingested: EvidenceStore, files: ClusterFiles) -> None:
    report = build_report(files, ingested, suspects=(ATTACKER,), register=REGISTER)
    assert report.verification.ok

    # What leaked: the Act 2 and Act 3 tool calls carried the profile; only Act 2's reached the attacker.
    assert [x.record.tool for x in report.leaks] == ["convert_currency", "convert_currency"]
    assert report.leaks[0].fields["customer_profile"] == sorted(report.leaks[0].fields["customer_profile"])
    assert {"email", "ni_number", "date_of_birth"} <= set(report.leaks[0].fields["customer_profile"])
    assert [x.delivered_to for x in report.leaks] == [[ATTACKER_ID], []]

    # What left: one connection, the converter's to the attacker, running the rug-pulled digest.
    [left] = report.exfil
    assert (left.src_identity, left.dst_identity, left.count, left.digests) == (
        CONVERTER,
        ATTACKER_ID,
        1,
        [RUGPULL],
    )

    # What was blocked, with the offender's identity, image and digest.
    l4 = next(g for g in report.blocked if g.kind == "l4-deny")
    assert (l4.src_identity, l4.image, l4.digests, l4.policy) == (
        CONVERTER,
        CONVERTER_IMAGE,
        [RUGPULL],
        DENY_POLICY,
    )
    assert {g.kind for g in report.blocked} == {"l4-deny", "mcp-deny", "a2a-deny"}

    # The Art. 28 row knows what runs now.
    assert report.running == {"acme-fx/currency-converter": RUGPULL}


def test_the_timeline_tells_the_story_in_order(ingested: EvidenceStore, files: ClusterFiles) -> None:
    report = build_report(files, ingested, register=REGISTER)
    story = [
        (r.kind, r.flags)
        for r in report.timeline
        if r.kind
        in ("image-seeded", "image-pushed", "rollout-restarted", "manifest-applied", "l4-deny", "alert-fired")
        or r.kind in ("tool-call", "l4-allow")
    ]
    assert story == [
        ("image-seeded", None),
        ("image-pushed", None),
        ("rollout-restarted", None),
        ("tool-call", "pii-in-arguments"),
        ("l4-allow", None),  # the exfil, once (the destination's record), without a suspect list
        ("manifest-applied", None),
        ("tool-call", "pii-in-arguments"),
        ("l4-deny", None),
        ("alert-fired", None),
    ]
    times = [r.time for r in report.timeline]
    assert times == sorted(times)
    # the baseline of an image nobody pushed over is not part of the incident
    assert [r.image for r in report.timeline if r.kind == "image-seeded"] == [CONVERTER_IMAGE]
    [push] = [r for r in report.timeline if r.kind == "image-pushed"]
    assert report.window is not None
    assert report.window[0] == push.time
    assert not any(r.kind in ("started", "mcp-allow", "model-call") for r in report.timeline)


def test_markdown_html_and_json_are_written(
    ingested: EvidenceStore, files: ClusterFiles, tmp_path: Path
) -> None:
    paths = write_dora_report(files, tmp_path / "out", store=ingested, register=REGISTER)
    markdown = paths.markdown.read_text()
    html = paths.html.read_text()
    data = json.loads(paths.json.read_text())
    head = ingested.verify().head

    for text in (markdown, html):
        assert "Art. 17" in text
        assert "Art. 28" in text
        assert CONVERTER in text
        assert RUGPULL in text
        assert DENY_POLICY in text
        assert head.hash in text
        assert "intact" in text
    assert f"--anchor {head.seq}:{head.hash}" in markdown
    assert "Alerts fired: IstioAuthZDeny" in markdown
    assert "alice@example.com" not in markdown + html  # field names, not the data
    assert data["verification"]["ok"] is True
    assert data["blocked"][0]["src_identity"] == CONVERTER


def test_html_is_escaped_and_self_contained(
    ingested: EvidenceStore, files: ClusterFiles, tmp_path: Path
) -> None:
    paths = write_dora_report(files, tmp_path / "out", store=ingested, register=REGISTER)
    html = paths.html.read_text()
    markdown = paths.markdown.read_text()
    assert EVIL_TOOL not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script" not in html.lower()
    assert not re.search(r"\b(src|href)\s*=", html, re.IGNORECASE)
    assert "<link" not in html.lower()
    assert "@import" not in html
    assert "url(" not in html
    assert EVIL_TOOL not in markdown
    assert "&lt;script&gt;" in markdown


def test_a_broken_chain_says_so_in_the_report(ingested: EvidenceStore, files: ClusterFiles) -> None:
    conn = sqlite3.connect(ingested.path)
    with conn:
        conn.execute("DROP TRIGGER records_no_update")
        conn.execute("UPDATE records SET summary = 'nothing' WHERE seq = 4")
    conn.close()
    report = build_report(files, ingested, register=REGISTER)
    assert not report.verification.ok
    assert report.verification.bad_seq == 4
    from trustusbank.evidence.render import markdown

    assert "BROKEN at seq 4" in markdown(report)


def test_the_art28_register_comes_from_the_registry_catalogue(
    ingested: EvidenceStore, files: ClusterFiles
) -> None:
    report = build_report(files, ingested)
    assert report.register_error is None
    entries = {e["name"]: e for e in report.register}
    assert list(entries) == ["account-mcp", "transaction-mcp", "ticket-mcp", "acme-fx/currency-converter"]
    converter = entries["acme-fx/currency-converter"]
    assert converter["publisher"] == "ACME FX Ltd"
    assert converter["spiffe_id"] == CONVERTER
    assert converter["pinned"]["digest"].startswith("sha256:")
    assert converter["pinned"]["tool_list_hash"].startswith("sha256:")
    # the story's (fake) rug-pulled digest is what the evidence says runs now
    assert report.running["acme-fx/currency-converter"] == RUGPULL
