"""The customer-facing role (support-bot): balance, transactions, conversion, profile, fraud hand-off.

Tool order is fixed, whatever order the customer used: get_balance, list_recent,
convert_currency (it needs the balance), get_profile, then the hand-off to the
fraud agent. "I am customer 12345. Please check my balance, list my recent
transactions, and convert my balance to USD." is therefore always
get_balance -> list_recent -> convert_currency, then the answer.
"""

from __future__ import annotations

from collections.abc import Iterator

from trustusbank.agents.scripted import replies
from trustusbank.agents.scripted.conversation import Conversation, Step, ToolResult
from trustusbank.agents.scripted.intents import Ask, Intent
from trustusbank.agents.scripted.masking import mask_field
from trustusbank.agents.scripted.money import fmt, to_decimal

_PROFILE_LABELS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "address": "Address",
    "date_of_birth": "Year of birth",
    "ni_number": "National Insurance number",
    "kyc_status": "Identity check (KYC)",
}


def _fraud_agent(conv: Conversation) -> str | None:
    return conv.delegate("fraud")


def _wants_list(conv: Conversation, ask: Ask) -> bool:
    """List transactions when asked, or when a fraud report cannot be handed off (so they can check)."""
    if ask.wants(Intent.FRAUD):
        return _fraud_agent(conv) is None
    return ask.wants(Intent.TRANSACTIONS)


def _balance(conv: Conversation, cid: str) -> ToolResult | None:
    return conv.result("get_balance", conv.args_for("get_balance", customer_id=cid))


def _conversion_step(conv: Conversation, ask: Ask, cid: str) -> Step | None:
    balance = _balance(conv, cid)
    if balance is None or not balance.ok or ask.to_ccy is None:
        return None
    amount, currency = balance.field("balance"), balance.field("currency")
    if to_decimal(amount) is None or not isinstance(currency, str) or currency.upper() == ask.to_ccy:
        return None
    return conv.step("convert_currency", amount=amount, from_ccy=currency, to_ccy=ask.to_ccy)


def _handoff_step(conv: Conversation, cid: str) -> Step | None:
    agent = _fraud_agent(conv)
    if agent is None:
        return None
    said = " ".join(conv.user_text.split())
    said = said if len(said) <= 500 else said[:497] + "..."
    request = (
        f"Customer {cid} does not recognise a transaction on their account. Review their recent "
        f"transactions, score the fraud risk 0-100, flag anything suspicious and escalate if the risk "
        f'is high. The customer said: "{said}"'
    )
    return conv.step(agent, request=request)


def steps(conv: Conversation, ask: Ask) -> Iterator[Step]:
    cid = conv.customer_id
    if cid is None:
        return
    planned: list[Step | None] = []
    if ask.wants(Intent.BALANCE) or ask.wants(Intent.CONVERT):
        planned.append(conv.step("get_balance", customer_id=cid))
    if _wants_list(conv, ask):
        planned.append(conv.step("list_recent", customer_id=cid, days=ask.days))
    for step in planned:
        if step is not None:
            yield step
    if ask.wants(Intent.CONVERT):
        step = _conversion_step(conv, ask, cid)
        if step is not None:
            yield step
    if ask.wants(Intent.PROFILE):
        step = conv.step("get_profile", customer_id=cid)
        if step is not None:
            yield step
    if ask.wants(Intent.FRAUD):
        step = _handoff_step(conv, cid)
        if step is not None:
            yield step


def _balance_part(conv: Conversation, ask: Ask, cid: str) -> str | None:
    if not conv.offers("get_balance"):
        return replies.unavailable("check your balance")
    balance = _balance(conv, cid)
    if balance is None:
        return None
    if not balance.ok:
        return replies.failed("retrieve your balance", balance)
    amount, currency = to_decimal(balance.field("balance")), balance.field("currency")
    if amount is None or not isinstance(currency, str):
        return "I'm sorry, I couldn't read your balance from our systems."
    sentence = f"Your balance is {fmt(amount, currency)}"
    if not ask.wants(Intent.CONVERT):
        return sentence + "."
    if ask.to_ccy is None:
        return f"{sentence}. Which currency would you like it in? I can quote USD, EUR or JPY."
    if ask.to_ccy == currency.upper():
        return f"{sentence}; it is already in {currency.upper()}."
    if not conv.offers("convert_currency"):
        return f"{sentence}. {replies.unavailable(f'convert it to {ask.to_ccy}')}"
    step = _conversion_step(conv, ask, cid)
    converted = conv.result(step.name, step.arguments) if step else None
    if converted is None:
        return sentence + "."
    if not converted.ok:
        return f"{sentence}. {replies.failed(f'convert it to {ask.to_ccy}', converted)}"
    value, to_ccy = to_decimal(converted.field("converted")), converted.field("to_ccy") or ask.to_ccy
    if value is None:
        return sentence + "."
    return f"{sentence} (about {fmt(value, str(to_ccy))} {str(to_ccy).upper()})."


def _profile_part(conv: Conversation, cid: str) -> str | None:
    if not conv.offers("get_profile"):
        return replies.unavailable("look up your personal details")
    profile = conv.result("get_profile", conv.args_for("get_profile", customer_id=cid))
    if profile is None:
        return None
    if not profile.ok:
        return replies.failed("look up your personal details", profile)
    if not isinstance(profile.data, dict):
        return "I'm sorry, I couldn't read your personal details from our systems."
    lines = [
        f"- {label}: {mask_field(key, profile.data[key])}"
        for key, label in _PROFILE_LABELS.items()
        if profile.data.get(key) not in (None, "")
    ]
    return "Here are the details we hold for you (masked for your security):\n" + "\n".join(lines)


def _transactions_part(conv: Conversation, ask: Ask, cid: str) -> str | None:
    if not conv.offers("list_recent"):
        return replies.unavailable("list your transactions")
    listed = conv.result("list_recent", conv.args_for("list_recent", customer_id=cid, days=ask.days))
    if listed is None:
        return None
    if not listed.ok:
        return replies.failed("list your transactions", listed)
    return replies.transactions_block(listed)


def _fraud_part(conv: Conversation, cid: str) -> str:
    step = _handoff_step(conv, cid)
    if step is None:
        return (
            "I'm sorry you've seen a payment you don't recognise. I can't open a fraud case from here; "
            "please check the list below and contact us through the app's 'Report fraud' option."
        )
    handed = conv.result(step.name, step.arguments)
    if handed is None:
        return "I'm sorry you've seen a payment you don't recognise; I couldn't reach our fraud team."
    if not handed.ok:
        return replies.failed("reach our fraud team just now", handed) + " Please try again shortly."
    return "I've passed this to our fraud team. Their assessment:\n" + handed.body


def answer(conv: Conversation, ask: Ask) -> str:
    if not ask.intents or ask.intents <= {Intent.GREETING, Intent.THANKS}:
        return replies.small_talk(conv, ask) or replies.refusal(conv)
    cid = conv.customer_id
    if cid is None:
        return replies.ASK_CUSTOMER_ID
    parts: list[str | None] = []
    if ask.wants(Intent.BALANCE) or ask.wants(Intent.CONVERT):
        parts.append(_balance_part(conv, ask, cid))
    if ask.wants(Intent.PROFILE):
        parts.append(_profile_part(conv, cid))
    if ask.wants(Intent.FRAUD):
        parts.append(_fraud_part(conv, cid))
    if _wants_list(conv, ask):
        parts.append(_transactions_part(conv, ask, cid))
    text = "\n\n".join(p for p in parts if p)
    return text or replies.refusal(conv)
