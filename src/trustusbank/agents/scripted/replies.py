"""Sentences every role of the scripted model shares: what it can do, sorry, transaction lists."""

from __future__ import annotations

from typing import Any

from trustusbank.agents.scripted.conversation import Conversation, ToolResult
from trustusbank.agents.scripted.intents import Ask, Intent
from trustusbank.agents.scripted.money import fmt, to_decimal

MAX_LISTED = 10

NO_MESSAGE = "Hello! I'm TrustUsBank's assistant. How can I help you today?"
PLANNING_FAILED = (
    "I'm sorry, something went wrong on my side while working on your request. "
    "Please try again, or rephrase your question."
)
ASK_CUSTOMER_ID = (
    'Could you tell me your 5-digit customer ID (for example, "I am customer 12345")? '
    "I need it to look up your account."
)


def capabilities(conv: Conversation) -> list[str]:
    """What the model can do with the tools on offer, in the customer's words."""
    can: list[str] = []
    if conv.offers("get_balance"):
        can.append("checking your balance")
    if conv.offers("list_recent"):
        can.append("listing your recent transactions")
    if conv.offers("convert_currency") and conv.offers("get_balance"):
        can.append("converting your balance to another currency (USD, EUR, JPY)")
    if conv.offers("get_profile"):
        can.append("showing the personal details we hold for you (masked)")
    if conv.delegate("fraud"):
        can.append("reporting a transaction you don't recognise")
    if conv.offers("get_balance"):  # a customer's agent: the back-office skills below are not theirs
        return can
    if conv.offers("list_recent") and (conv.offers("flag_suspicious") or conv.offers("get_details")):
        can.append("reviewing a customer's recent transactions for fraud")
    if conv.offers("create_ticket") and conv.offers("notify_human"):
        can.append("opening an incident ticket (a DORA Art. 17 record) and notifying the on-call team")
    return can


def small_talk(conv: Conversation, ask: Ask) -> str | None:
    """The answer to a greeting or a thank-you, None for anything else."""
    if ask.intents == {Intent.THANKS}:
        return "You're welcome! Is there anything else I can help you with?"
    if ask.intents == {Intent.GREETING}:
        return refusal(conv, greeting=True)
    return None


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def refusal(conv: Conversation, *, greeting: bool = False) -> str:
    can = capabilities(conv)
    opening = "Hello!" if greeting else "I'm sorry, I can't help with that request."
    if not can:
        return f"{opening} I have no banking tools available right now, so I can't look anything up for you."
    return f"{opening} I can help with {_joined(can)}."


def unavailable(what: str) -> str:
    return f"I'm sorry, I can't {what} right now: that service isn't available to me."


def failed(what: str, result: ToolResult) -> str:
    return f"I'm sorry, I couldn't {what}: {result.error()}."


def transaction_line(txn: dict[str, Any]) -> str:
    """'- 2026-11-27: Pret a Manger (GB), -£22.10'."""
    amount = to_decimal(txn.get("amount"))
    currency = str(txn.get("currency") or "")
    money = fmt(amount, currency, sign=True) if amount is not None and currency else "amount unknown"
    when = str(txn.get("ts") or "")[:10] or "date unknown"
    country = f" ({txn['country']})" if txn.get("country") else ""
    flagged = " [flagged for review]" if txn.get("flagged") is True else ""
    return f"- {when}: {txn.get('merchant', 'unknown merchant')}{country}, {money}{flagged}"


def transactions_block(result: ToolResult) -> str:
    txns = result.records("transactions")
    days = result.field("days") or result.call.arguments.get("days")
    period = f" (last {days} days)" if isinstance(days, int) else ""
    if not txns:
        return f"You have no transactions{period or ' in that period'}."
    lines = [transaction_line(t) for t in txns[:MAX_LISTED]]
    if len(txns) > MAX_LISTED:
        lines.append(f"- ... and {len(txns) - MAX_LISTED} more")
    return f"Your recent transactions{period}:\n" + "\n".join(lines)
