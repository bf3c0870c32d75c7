"""How the page reads entries: slots filled once, digests shortened, anything unsure is drift."""

from __future__ import annotations

import pytest

from trustusbank.workloads.agentregistry.view import (
    digest_html,
    digest_verdict,
    fill,
    inline_hashes,
    short_digest,
    signature_verdict,
    tools_verdict,
)

DIGEST = "sha256:1a2b3c4d5e6f" + "0" * 52


def test_slots_are_filled_in_one_pass() -> None:
    assert fill("<p>{{a}}</p><p>{{b}}</p>", {"a": "{{b}}", "b": "x"}) == "<p>{{b}}</p><p>x</p>"
    with pytest.raises(KeyError):
        fill("{{missing}}", {})


def test_a_slot_inside_the_script_is_refused() -> None:
    assert inline_hashes("<script>let a = 1;</script>", "script") == [
        "'sha256-xY6QKfH9PRsQnLz56nj6MBwiK5oHg+im1Jkpdp1x/Ck='"
    ]
    with pytest.raises(ValueError, match="slot"):
        inline_hashes("<script>{{rows}}</script>", "script")


def test_digests_are_shown_short_and_kept_whole() -> None:
    assert short_digest(DIGEST) == "sha256:1a2b3c4d…"
    assert short_digest("sha256:abc") == "sha256:abc"
    html = digest_html(DIGEST, "k", differs=True)
    assert f'title="{DIGEST}"' in html
    assert f'<code class="full">{DIGEST}</code>' in html
    assert 'class="digest differs"' in html
    assert digest_html(None, "k") == '<span class="none">none</span>'


@pytest.mark.parametrize(
    ("entry", "verdict"),
    [
        ({"matches_pin": True, "running": {}}, "match"),
        ({"matches_pin": None, "running": None}, "unchecked"),
        ({"matches_pin": False, "running": None}, "drift"),  # the store could not be read
        ({"matches_pin": False, "running": {}}, "drift"),
        ({}, "unchecked"),
    ],
)
def test_only_a_confirmed_match_is_a_match(entry: dict, verdict: str) -> None:
    assert digest_verdict(entry) == verdict
    tools = {"tool_list_matches_pin": entry.get("matches_pin"), "running": entry.get("running")}
    assert tools_verdict(tools) == verdict


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("org", "ok"),
        ("not-checked", "unchecked"),
        ("untrusted", "drift"),
        ("unsigned", "drift"),
        ("error", "drift"),
        ("something-new", "drift"),
    ],
)
def test_only_an_org_signature_is_good(status: str, verdict: str) -> None:
    assert signature_verdict({"signature": {"status": status}}) == verdict
    assert signature_verdict({}) == "drift"
