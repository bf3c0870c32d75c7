"""fraud-bot and triage-bot roles, alone and chained: support -> fraud_bot -> triage_bot."""

from __future__ import annotations

import json

from tests.agents.scripted.harness import (
    FRAUD_TOOLS,
    SUPPORT_TOOLS,
    TRIAGE_TOOLS,
    Bank,
    Run,
    agent_tool,
    drive,
    model,
)
from trustusbank.agents.scripted.risk import FLAG_ABOVE, score

FRAUD_SYSTEM = "You are fraud-bot. Score risk 0-100 and escalate above 70 to triage-bot."
TRIAGE_SYSTEM = "You are triage-bot. Open a DORA Art. 17 incident ticket and notify a human."
COMPLAINT = "I am customer 12345 and I don't recognise a transaction on my account."


async def test_seed_transactions_score_as_the_demo_says(bank: Bank) -> None:
    listed, _ = await bank.call("list_recent", {"customer_id": "12345", "days": 30})
    scores = {t["txn_id"]: score(t) for t in json.loads(listed)["transactions"]}
    assert scores["txn-003"].score > FLAG_ABOVE
    assert "RU" in scores["txn-003"].rationale()
    assert "USD" in scores["txn-003"].rationale()
    assert all(s.score <= FLAG_ABOVE for k, s in scores.items() if k != "txn-003")
    assert scores["txn-004"].score == 0  # the salary: money in


async def test_fraud_analyst_lists_scores_and_flags(bank: Bank) -> None:
    run = await drive(
        model(),
        await bank.tools(FRAUD_TOOLS),
        "Customer 12345 reports a transaction they don't recognise.",
        system=FRAUD_SYSTEM,
    )
    assert run.chain == ["list_recent", "flag_suspicious"]
    flag = run.calls[1].arguments
    assert flag["txn_id"] == "txn-003"
    assert "RU" in flag["reason"]
    assert "/100" in flag["reason"]
    txn, _ = await bank.call("get_details", {"txn_id": "txn-003"})
    assert json.loads(txn)["flagged"] is True  # the flag really landed
    expected = score(json.loads(txn)).score
    assert f"overall risk {expected}/100 (high)" in run.reply.text
    assert "Flagged txn-003 as suspicious." in run.reply.text
    assert "No triage agent is available" in run.reply.text


async def test_already_flagged_is_not_flagged_again(bank: Bank) -> None:
    tools = await bank.tools(FRAUD_TOOLS)
    await drive(model(), tools, "Please review customer 12345.", system=FRAUD_SYSTEM)
    again = await drive(model(), tools, "Please review customer 12345.", system=FRAUD_SYSTEM)
    assert again.chain == ["list_recent"]
    assert "txn-003 was already flagged" in again.reply.text


async def test_low_risk_customer_is_neither_flagged_nor_escalated(bank: Bank) -> None:
    tools = await bank.tools(FRAUD_TOOLS)
    tools["triage_bot"] = agent_tool("triage_bot", "Opens incident tickets", _unexpected)
    run = await drive(model(), tools, "Review customer 12346 for fraud.", system=FRAUD_SYSTEM)
    assert run.chain == ["list_recent"]
    assert "overall risk 0/100 (low)" in run.reply.text
    assert "Nothing here needs flagging or escalation." in run.reply.text


async def _unexpected(request: str) -> str:
    raise AssertionError(f"unexpected escalation: {request}")


async def test_named_transaction_is_looked_up(bank: Bank) -> None:
    run = await drive(
        model(),
        await bank.tools(FRAUD_TOOLS),
        "Customer 12346 asks about txn-006. Please investigate.",
        system=FRAUD_SYSTEM,
    )
    assert run.chain == ["list_recent", "get_details"]
    assert run.calls[1].arguments == {"txn_id": "txn-006"}
    assert "txn-006" in run.reply.text


async def test_triage_opens_a_critical_ticket_and_pages(bank: Bank) -> None:
    request = (
        "Please open a DORA Art. 17 incident for customer 12345. Fraud risk score 95/100 (high). "
        "Riskiest transaction txn-003."
    )
    run = await drive(model(), await bank.tools(TRIAGE_TOOLS), request, system=TRIAGE_SYSTEM)
    assert run.chain == ["create_ticket", "notify_human"]
    ticket = run.calls[0].arguments
    assert ticket["customer_id"] == "12345"
    assert ticket["severity"] == "critical"
    assert "txn-003" in ticket["summary"]
    assert "95/100" in ticket["summary"]
    ticket_id = json.loads(_tool_text(run, "create_ticket"))["ticket_id"]
    assert run.calls[1].arguments == {"ticket_id": ticket_id, "channel": "pager"}
    assert ticket_id in run.reply.text
    assert "DORA Art. 17 incident record" in run.reply.text
    assert "pager" in run.reply.text


async def test_triage_severity_follows_the_score(bank: Bank) -> None:
    tools = await bank.tools(TRIAGE_TOOLS)
    for points, severity, channel in ((80, "high", "slack"), (55, "medium", "slack"), (10, "low", "slack")):
        run = await drive(
            model(), tools, f"Escalation: customer 12346, risk {points}/100.", system=TRIAGE_SYSTEM
        )
        assert run.calls[0].arguments["severity"] == severity
        assert run.calls[1].arguments["channel"] == channel


async def test_triage_without_a_customer_asks_for_one(bank: Bank) -> None:
    run = await drive(
        model(), await bank.tools(TRIAGE_TOOLS), "Open an incident please.", system=TRIAGE_SYSTEM
    )
    assert run.calls == []
    assert "customer ID" in run.reply.text


def _tool_text(run: Run, name: str) -> str:
    return next(m.text for m in run.messages if m.role == "tool" and m.tool_name == name)


async def test_support_hands_off_to_fraud_which_escalates_to_triage(bank: Bank) -> None:
    runs: dict[str, Run] = {}

    async def triage_bot(request: str) -> str:
        runs["triage"] = await drive(model(), await bank.tools(TRIAGE_TOOLS), request, system=TRIAGE_SYSTEM)
        return runs["triage"].reply.text

    async def fraud_bot(request: str) -> str:
        tools = await bank.tools(FRAUD_TOOLS)
        tools["triage_bot"] = agent_tool("triage_bot", "Opens DORA incident tickets", triage_bot)
        runs["fraud"] = await drive(model(), tools, request, system=FRAUD_SYSTEM)
        return runs["fraud"].reply.text

    tools = await bank.tools(SUPPORT_TOOLS)
    tools["fraud_bot"] = agent_tool("fraud_bot", "Investigates suspicious transactions", fraud_bot)
    support = await drive(model(), tools, COMPLAINT)

    assert support.chain == ["fraud_bot"]
    assert "12345" in support.calls[0].arguments["request"]
    assert runs["fraud"].chain == ["list_recent", "flag_suspicious", "triage_bot"]
    escalation = runs["fraud"].calls[2].arguments["request"]
    assert "customer 12345" in escalation
    assert "txn-003" in escalation
    assert "/100" in escalation
    assert runs["triage"].chain == ["create_ticket", "notify_human"]
    assert runs["triage"].calls[0].arguments["severity"] == "critical"
    ticket_id = runs["triage"].calls[1].arguments["ticket_id"]
    assert support.reply.text.startswith("I've passed this to our fraud team.")
    assert ticket_id in support.reply.text
    assert "DORA Art. 17" in support.reply.text


async def test_support_without_a_fraud_agent_shows_the_transactions(bank: Bank) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), COMPLAINT)
    assert run.chain == ["list_recent"]
    assert "I can't open a fraud case from here" in run.reply.text
    assert "GenericLuxuryGoods (RU), -$1,499.00" in run.reply.text


async def test_failed_hand_off_is_explained(bank: Bank) -> None:
    tools = await bank.tools(SUPPORT_TOOLS)
    spec, _ = agent_tool("fraud_bot", "Investigates fraud", _unexpected)

    async def denied(arguments: dict) -> tuple[str, bool]:
        return "access denied by AccessPolicy trustusbank-bank-agents/fraud-bot-callers", True

    tools["fraud_bot"] = (spec, denied)
    run = await drive(model(), tools, COMPLAINT)
    assert run.chain == ["fraud_bot"]
    assert run.reply.text.startswith("I'm sorry, I couldn't reach our fraud team just now: access denied")


async def test_a_sub_agent_answer_is_masked_before_relaying(bank: Bank) -> None:
    async def chatty(request: str) -> str:
        return "Reviewed. Contact on file: alice@example.com, +44 7700 900100, NI QQ 12 34 56 C."

    tools = await bank.tools(SUPPORT_TOOLS)
    tools["fraud_bot"] = agent_tool("fraud_bot", "Investigates fraud", chatty)
    run = await drive(model(), tools, COMPLAINT)
    assert "a***@example.com" in run.reply.text
    assert "+44 *** *** 100" in run.reply.text
    assert "QQ ** ** ** C" in run.reply.text
    for raw in ("alice@example.com", "7700 900100", "12 34 56"):
        assert raw not in run.reply.text
