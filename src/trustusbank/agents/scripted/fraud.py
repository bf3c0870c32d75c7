"""The fraud-analyst role (fraud-bot): review, score, flag, escalate.

It applies when the tools on offer are an analyst's (list_recent with
get_details or flag_suspicious, and no get_balance). Plan: list the customer's recent transactions
(and get_details for any transaction the request names), score each one with
`risk.score`, flag_suspicious the ones above 70 that are not flagged already,
and when the case scores above 70 hand it to the triage agent with the score,
the transaction and the rationale.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from trustusbank.agents.scripted import replies
from trustusbank.agents.scripted.conversation import Conversation, Step
from trustusbank.agents.scripted.intents import Ask, Intent, txn_ids
from trustusbank.agents.scripted.risk import FLAG_ABOVE, HOME_CURRENCY, Scored, level, score

MAX_FLAGS = 3
_CASE = re.compile(
    r"\b(?:review|investigat\w*|check|look (?:at|into)|risk|score|assess\w*|analy[sz]\w*|transactions?)\b",
    re.IGNORECASE,
)


def applies(conv: Conversation) -> bool:
    """An analyst's tools, and not a support agent's (which always has get_balance)."""
    analyst = conv.offers("flag_suspicious") or conv.offers("get_details")
    return conv.offers("list_recent") and analyst and not conv.offers("get_balance")


def _is_case(conv: Conversation, ask: Ask) -> bool:
    return ask.wants(Intent.FRAUD) or bool(_CASE.search(conv.user_text))


def _triage_agent(conv: Conversation) -> str | None:
    return conv.delegate("triage", "incident", "ticket")


def _listing_step(conv: Conversation, ask: Ask) -> Step | None:
    cid = conv.customer_id
    return conv.step("list_recent", customer_id=cid, days=ask.days) if cid else None


def _home_currency(conv: Conversation) -> str:
    for result in reversed(conv.results):
        if result.ok and result.call.name == "get_balance" and isinstance(result.field("currency"), str):
            return str(result.field("currency"))
    return HOME_CURRENCY


def scored(conv: Conversation, ask: Ask) -> list[Scored]:
    """Every transaction seen this turn, scored, riskiest first (ties: in the order seen)."""
    seen: dict[str, Scored] = {}
    home = _home_currency(conv)
    listing = _listing_step(conv, ask)
    listed = conv.result(listing.name, listing.arguments) if listing else None
    txns = listed.records("transactions") if listed and listed.ok else []
    for txn_id in txn_ids(conv.user_text):
        details = conv.result("get_details", conv.args_for("get_details", txn_id=txn_id))
        if details and details.ok and isinstance(details.data, dict):
            txns.append(details.data)
    for txn in txns:
        seen.setdefault(str(txn.get("txn_id", len(seen))), score(txn, home))
    return sorted(seen.values(), key=lambda s: -s.score)


def _risky(found: list[Scored]) -> list[Scored]:
    return [s for s in found if s.score > FLAG_ABOVE][:MAX_FLAGS]


def _flag_step(conv: Conversation, item: Scored) -> Step | None:
    reason = f"Fraud risk {item.score}/100: {item.rationale()}"
    return conv.step("flag_suspicious", txn_id=item.txn_id, reason=reason)


def _escalation_step(conv: Conversation, found: list[Scored]) -> Step | None:
    agent = _triage_agent(conv)
    if agent is None or not found or found[0].score <= FLAG_ABOVE:
        return None
    top = found[0]
    flagged = ", ".join(s.txn_id for s in _risky(found))
    request = (
        f"Please open a DORA Art. 17 incident for customer {conv.customer_id or top.txn.get('customer_id')}. "
        f"Fraud risk score {top.score}/100 ({level(top.score)}). Riskiest transaction {top.describe()}. "
        f"Rationale: {top.rationale()}. Flagged as suspicious: {flagged}."
    )
    return conv.step(agent, request=request)


def steps(conv: Conversation, ask: Ask) -> Iterator[Step]:
    if not _is_case(conv, ask):
        return
    listing = _listing_step(conv, ask)
    if listing is not None:
        yield listing
    for txn_id in txn_ids(conv.user_text):
        details = conv.step("get_details", txn_id=txn_id)
        if details is not None:
            yield details
    found = scored(conv, ask)
    for item in _risky(found):
        step = _flag_step(conv, item) if item.txn.get("flagged") is not True else None
        if step is not None:
            yield step
    escalation = _escalation_step(conv, found)
    if escalation is not None:
        yield escalation


def answer(conv: Conversation, ask: Ask) -> str:
    if not _is_case(conv, ask):
        return replies.small_talk(conv, ask) or replies.refusal(conv)
    listing = _listing_step(conv, ask)
    if listing is None and not txn_ids(conv.user_text):
        return "Which customer should I review? Please give their 5-digit customer ID."
    listed = conv.result(listing.name, listing.arguments) if listing else None
    if listed is not None and not listed.ok:
        return replies.failed("list the customer's transactions", listed)
    found = scored(conv, ask)
    who = f"customer {conv.customer_id}" if conv.customer_id else "the transactions named"
    if not found:
        return f"Fraud review for {who}: no transactions to review, so no risk found (0/100)."
    top = found[0]
    lines = [f"Fraud review for {who}: overall risk {top.score}/100 ({level(top.score)})."]
    risky = _risky(found)
    shown = risky or [top]
    for item in shown:
        lines.append(f"- {item.describe()} scored {item.score}/100: {item.rationale()}.")
    others = found[len(shown) :]
    if others:
        lines.append(f"The other {len(others)} transaction(s) scored at most {others[0].score}/100.")
    for item in risky:
        if item.txn.get("flagged") is True:
            lines.append(f"{item.txn_id} was already flagged as suspicious.")
            continue
        step = _flag_step(conv, item)
        flagged = conv.result(step.name, step.arguments) if step else None
        if flagged is not None and flagged.ok:
            lines.append(f"Flagged {item.txn_id} as suspicious.")
        elif flagged is not None:
            lines.append(replies.failed(f"flag {item.txn_id}", flagged))
    escalation = _escalation_step(conv, found)
    if top.score > FLAG_ABOVE:
        outcome = conv.result(escalation.name, escalation.arguments) if escalation else None
        if escalation is None:
            lines.append("No triage agent is available to me: please escalate this case by hand.")
        elif outcome is not None and outcome.ok:
            lines.append(f"Escalated to {escalation.name}: {outcome.body}")
        elif outcome is not None:
            lines.append(replies.failed(f"escalate to {escalation.name}", outcome))
    else:
        lines.append("Nothing here needs flagging or escalation.")
    return "\n".join(lines)
