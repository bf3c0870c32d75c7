"""The story's claims, one rule each: judged from observed acts, without a cluster."""

from __future__ import annotations

from dataclasses import replace

from trustusbank.scenario.receipts import Alert, Deny, ToolCall
from trustusbank.scenario.verdict import ActRecord, judge

CONVERTER = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
REPLY = "Your balance is £4,287.55 (about $5,445.19 USD)."
CLEAN = [
    ToolCall.of(step)
    for step in (
        {"name": "get_balance"},
        {"name": "list_recent"},
        {"name": "convert_currency", "arguments": {}},
    )
]
FOOLED = [
    *CLEAN,
    ToolCall.of({"name": "get_profile"}),
    ToolCall.of({"name": "convert_currency", "arguments": {"customer_profile": {}}}),
]


def alert(name: str) -> Alert:
    return Alert(name, "firing", {}, summary=None, quarantine=None, mailed=True)


def deny(source_identity: str) -> Deny:
    return Deny(
        kind="l4-deny",
        source="ztunnel",
        source_identity=source_identity,
        destination_identity="spiffe://cluster.local/ns/external-attacker/sa/mock-attacker",
        workload="currency-converter",
        image=None,
        digest=None,
        policy="deny-bank-to-attacker",
        trace_id=None,
        seq=1,
        summary="",
    )


def acts() -> list[ActRecord]:
    return [
        ActRecord(1, "clean", REPLY, CLEAN, 3, 3),
        ActRecord(2, "rug pull", REPLY, FOOLED, 3, 4, alerts=[alert("BankToAttackerAttempt")]),
        ActRecord(
            3,
            "defence",
            REPLY,
            FOOLED,
            4,
            4,
            denies=[deny(CONVERTER)],
            alerts=[alert("IstioAuthZDeny"), alert("BankToAttackerAttempt")],
        ),
    ]


def test_the_seed_story_holds() -> None:
    story = acts()
    assert judge(story, CONVERTER) == []
    assert all(a.ok for a in story)


def test_exfil_in_act_three_breaks_the_story() -> None:
    story = acts()
    story[2] = replace(story[2], exfil_after=5)
    assert judge(story, CONVERTER) == ["Act 3: 1 exfil events despite the defence"]
    assert not story[2].ok


def test_a_changed_reply_breaks_the_story() -> None:
    story = acts()
    story[2] = replace(story[2], reply="Sorry, I could not convert your balance.")
    assert judge(story, CONVERTER) == ["Act 3: the customer's reply differs from Act 1"]


def test_act_two_without_a_leak_or_alert_is_not_a_breach() -> None:
    story = acts()
    story[1] = replace(story[1], chain=CLEAN, exfil_after=3, alerts=[])
    assert judge(story, CONVERTER) == [
        "Act 2: the agent did not pass the profile to a tool",
        "Act 2: the attacker received nothing",
        "Act 2: alert BankToAttackerAttempt did not fire",
    ]


def test_act_three_needs_the_converter_named_and_both_alerts() -> None:
    story = acts()
    story[2] = replace(story[2], denies=[deny("spiffe://x/ns/a/sa/b")], alerts=[])
    assert judge(story, CONVERTER) == [
        f"Act 3: no deny names {CONVERTER}",
        "Act 3: alert IstioAuthZDeny did not fire",
        "Act 3: alert BankToAttackerAttempt did not fire",
    ]


def test_a_failed_act_is_reported() -> None:
    story = acts()
    story[0] = replace(story[0], error="ConnectError: chatbot down")
    assert "Act 1: failed: ConnectError: chatbot down" in judge(story, CONVERTER)


def test_a_rate_limited_agent_is_said_first_not_left_to_the_missing_deny() -> None:
    story = acts()
    limited = replace(
        deny("spiffe://cluster.local/ns/trustusbank-bank-agents/sa/support-bot"),
        kind="http-deny",
        source="waypoint",
        policy="trustusbank-platform/account-mcp-route local rate limit",
        reason="rate limited",
    )
    story[2] = replace(story[2], reply="Sorry.", chain=CLEAN[:1], denies=[limited], alerts=[])
    problems = judge(story, CONVERTER)
    assert problems[0] == (
        "Act 3: the agent's calls were rate limited 1 time(s) by trustusbank-platform/account-mcp-route "
        "local rate limit: the act could not run as a customer's prompt would; wait for the limit to "
        "refill and run it again"
    )
    assert "Act 3: no deny names " + CONVERTER in problems  # the other claims still reported


def test_a_deny_for_another_reason_is_not_a_rate_limit() -> None:
    assert not deny(CONVERTER).rate_limited
    assert replace(deny(CONVERTER), reason="rate limited").rate_limited
