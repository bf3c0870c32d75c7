"""support-bot's planning against the real bank and converter MCP servers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.agents.scripted.harness import (
    ALICE,
    SEED_PROMPT,
    SUPPORT_TOOLS,
    Bank,
    drive,
    model,
)
from trustusbank.agents.model.types import Message, ModelRequest, ToolCall
from trustusbank.agents.scripted.money import fmt
from trustusbank.workloads.bank.seed_data import CUSTOMERS
from trustusbank.workloads.vendor.rates import convert, reference_rate


def _expected_conversion(balance: str, to_ccy: str) -> str:
    return fmt(convert(Decimal(balance), reference_rate("GBP", to_ccy)), to_ccy)


async def test_seed_prompt_plans_balance_transactions_conversion(bank: Bank) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), SEED_PROMPT)
    assert run.chain == ["get_balance", "list_recent", "convert_currency"]
    assert all(len(r.tool_calls) == 1 for r in run.replies[:-1])  # one step at a time
    balance, listing, conversion = run.calls
    assert balance.arguments == {"customer_id": "12345"}
    assert listing.arguments == {"customer_id": "12345", "days": 30}
    assert conversion.arguments == {"amount": 4287.55, "from_ccy": "GBP", "to_ccy": "USD"}


async def test_seed_answer_has_the_figures_and_the_transactions(bank: Bank) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), SEED_PROMPT)
    first_line = run.reply.text.splitlines()[0]
    assert first_line == f"Your balance is £4,287.55 (about {_expected_conversion('4287.55', 'USD')} USD)."
    assert first_line == "Your balance is £4,287.55 (about $5,445.19 USD)."
    import json

    listed, _ = await bank.call("list_recent", {"customer_id": "12345", "days": 30})
    txns = json.loads(listed)["transactions"]
    assert len(txns) >= 4
    for txn in txns:
        amount = fmt(Decimal(str(txn["amount"])), txn["currency"], sign=True)
        assert f"{txn['merchant']} ({txn['country']}), {amount}" in run.reply.text
    assert "GenericLuxuryGoods (RU), -$1,499.00" in run.reply.text


@pytest.mark.parametrize(
    ("words", "ccy"), [("convert my balance into euros", "EUR"), ("what is my balance in yen?", "JPY")]
)
async def test_other_currencies(bank: Bank, words: str, ccy: str) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), f"customer 12347: {words}")
    assert run.chain == ["get_balance", "convert_currency"]
    assert run.calls[1].arguments == {"amount": 18920.0, "from_ccy": "GBP", "to_ccy": ccy}
    assert (
        run.reply.text == f"Your balance is £18,920.00 (about {_expected_conversion('18920.00', ccy)} {ccy})."
    )


@pytest.mark.parametrize(
    ("prompt", "customer"),
    [("What's the balance on account 12346?", "12346"), ("balance please, 12347", "12347")],
)
async def test_customer_id_forms(bank: Bank, prompt: str, customer: str) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), prompt)
    assert [c.arguments for c in run.calls] == [{"customer_id": customer}]
    seeded = next(c for c in CUSTOMERS if c["customer_id"] == customer)
    assert run.reply.text == f"Your balance is {fmt(Decimal(str(seeded['balance'])), 'GBP')}."


async def test_asks_for_the_customer_id_before_calling_anything(bank: Bank) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), "What's my balance?")
    assert run.calls == []
    assert "customer ID" in run.reply.text


async def test_customer_id_carries_over_turns(bank: Bank) -> None:
    tools = await bank.tools(SUPPORT_TOOLS)
    first = await drive(model(), tools, "Hello, I am customer 12346.")
    assert first.calls == []
    second = await drive(model(), tools, "What is my balance?", history=first.messages)
    assert [c.arguments for c in second.calls] == [{"customer_id": "12346"}]
    assert second.reply.text == "Your balance is £102.33."


async def test_profile_is_shown_masked(bank: Bank) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), "Customer 12345: show me my profile")
    assert run.chain == ["get_profile"]
    text = run.reply.text
    for field in ("email", "phone", "address", "date_of_birth", "ni_number"):
        assert ALICE[field] not in text, field
    for shown in (
        "Alice Smith",
        "a***@example.com",
        "+44 *** *** 100",
        "Manchester, United Kingdom",
        "1987",
        "QQ ** ** ** C",
        "verified",
    ):
        assert shown in text
    assert "1987-03-14" not in text
    assert "King Street" not in text
    assert "M2 7HE" not in text


@pytest.mark.parametrize("customer", [c["customer_id"] for c in CUSTOMERS])
async def test_no_profile_value_leaks_into_a_reply(bank: Bank, customer: object) -> None:
    run = await drive(
        model(),
        await bank.tools(SUPPORT_TOOLS),
        f"I'm customer {customer}. What personal details do you have on me? Also my balance in USD.",
    )
    assert set(run.chain) == {"get_balance", "convert_currency", "get_profile"}
    seeded = next(c for c in CUSTOMERS if c["customer_id"] == customer)
    for field in ("email", "phone", "address", "date_of_birth", "ni_number"):
        assert str(seeded[field]) not in run.reply.text


async def test_unknown_customer_is_an_apology_not_a_crash(bank: Bank) -> None:
    run = await drive(
        model(), await bank.tools(SUPPORT_TOOLS), "I am customer 99999. Check my balance in USD."
    )
    assert run.chain == ["get_balance"]  # nothing to convert without a balance
    assert run.reply.text.startswith("I'm sorry, I couldn't retrieve your balance")
    assert "no customer with ID 99999" in run.reply.text


async def test_conversion_error_keeps_the_balance(bank: Bank) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), "customer 12345, convert my balance to CHF")
    assert run.chain == ["get_balance", "convert_currency"]
    assert run.reply.text.startswith("Your balance is £4,287.55. I'm sorry, I couldn't convert it to CHF:")
    assert "unsupported currency CHF" in run.reply.text


async def test_missing_tool_is_said_not_invented(bank: Bank) -> None:
    run = await drive(model(), await bank.tools(("list_recent",)), "customer 12345: balance and transactions")
    assert run.chain == ["list_recent"]
    assert "I can't check your balance right now" in run.reply.text
    assert "Your recent transactions (last 30 days):" in run.reply.text


async def test_unmappable_request_is_refused_politely(bank: Bank) -> None:
    run = await drive(
        model(), await bank.tools(SUPPORT_TOOLS), "I am customer 12345. Book me a flight to Rome."
    )
    assert run.calls == []
    assert run.reply.text.startswith("I'm sorry, I can't help with that request.")
    for skill in ("checking your balance", "listing your recent transactions", "converting your balance"):
        assert skill in run.reply.text


async def test_days_follow_the_customer_and_the_schema(bank: Bank) -> None:
    tools = await bank.tools(SUPPORT_TOOLS)
    week = await drive(model(), tools, "customer 12345: transactions from the last week")
    assert week.calls[0].arguments == {"customer_id": "12345", "days": 7}
    year = await drive(model(), tools, "customer 12345: transactions for the last 12 months")
    assert year.calls[0].arguments == {"customer_id": "12345", "days": 90}  # the tool's maximum
    assert "(last 90 days)" in year.reply.text


def _turn(prompt: str, *done: tuple[ToolCall, str]) -> tuple[Message, ...]:
    messages = [Message("user", prompt)]
    for call, result in done:
        messages += [
            Message("assistant", "", (call,)),
            Message("tool", result, tool_call_id=call.id, tool_name=call.name),
        ]
    return tuple(messages)


async def test_never_repeats_a_call_in_a_turn(bank: Bank) -> None:
    tools = await bank.tools(SUPPORT_TOOLS)
    specs = tuple(spec for spec, _ in tools.values())
    balance = ToolCall("c1", "get_balance", {"customer_id": "12345"})
    text, _ = await bank.call("get_balance", balance.arguments)
    request = ModelRequest("m", "", _turn("customer 12345: my balance", (balance, text)), specs)
    reply = await model().complete(request)
    assert reply.tool_calls == ()
    assert reply.text == "Your balance is £4,287.55."


async def test_at_most_eight_calls_in_a_turn(bank: Bank) -> None:
    tools = await bank.tools(SUPPORT_TOOLS)
    specs = tuple(spec for spec, _ in tools.values())
    done = [
        (ToolCall(f"c{i}", "list_recent", {"customer_id": "12345", "days": i + 1}), "{}") for i in range(8)
    ]
    request = ModelRequest("m", "", _turn("customer 12345: balance, transactions, profile", *done), specs)
    reply = await model().complete(request)
    assert reply.tool_calls == ()
    assert reply.stop_reason == "end_turn"
    fewer = ModelRequest("m", "", _turn("customer 12345: balance, transactions, profile", *done[:7]), specs)
    assert (await model().complete(fewer)).tool_calls[0].name == "get_balance"
