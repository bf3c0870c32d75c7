"""The triage role (triage-bot): open the incident ticket, then page a human.

It applies when create_ticket and notify_human are on offer (and get_balance is not). Severity follows
the risk score in the request (above 90 critical, above 70 high, above 40
medium, else low; without a score, the words "critical"/"urgent" decide), and
a critical case pages the on-call human while anything less goes to Slack.
Every ticket is a DORA Art. 17 incident record, and the answer says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from trustusbank.agents.scripted import replies
from trustusbank.agents.scripted.conversation import Conversation, Step
from trustusbank.agents.scripted.intents import Ask, Intent, txn_ids

SUMMARY_QUOTE = 600  # characters of the request quoted in the ticket
_SCORE = re.compile(r"\b(\d{1,3})\s*/\s*100\b")
_RISK = re.compile(r"\brisk\D{0,20}?(\d{1,3})\b", re.IGNORECASE)
_CASE = re.compile(
    r"\b(?:incident|ticket|escalat\w*|risk|suspicious|triage|open a case|report)\b", re.IGNORECASE
)


def applies(conv: Conversation) -> bool:
    """A triage agent's tools, and not a support agent's (which always has get_balance)."""
    return conv.offers("create_ticket") and conv.offers("notify_human") and not conv.offers("get_balance")


def risk_score(text: str) -> int | None:
    match = _SCORE.search(text) or _RISK.search(text)
    return min(int(match.group(1)), 100) if match else None


def severity(text: str) -> str:
    points = risk_score(text)
    if points is None:
        lower = text.lower()
        return (
            "critical"
            if "critical" in lower
            else "high"
            if re.search(r"\b(urgent|high)\b", lower)
            else "medium"
        )
    return "critical" if points > 90 else "high" if points > 70 else "medium" if points > 40 else "low"


def _summary(conv: Conversation) -> str:
    text = " ".join(conv.user_text.split())
    points = risk_score(text)
    txns = txn_ids(text)
    head = f"Suspected fraud for customer {conv.customer_id}"
    if txns:
        head += f" on {', '.join(txns)}"
    if points is not None:
        head += f" (risk {points}/100)"
    reported = text if len(text) <= SUMMARY_QUOTE else text[: SUMMARY_QUOTE - 3] + "..."
    return f"{head}. Reported: {reported}"


def _is_case(conv: Conversation, ask: Ask) -> bool:
    return ask.wants(Intent.FRAUD) or bool(_CASE.search(conv.user_text))


def _ticket_step(conv: Conversation) -> Step | None:
    cid = conv.customer_id
    if cid is None:
        return None
    return conv.step(
        "create_ticket", customer_id=cid, summary=_summary(conv), severity=severity(conv.user_text)
    )


def _notify_step(conv: Conversation, ticket_id: str) -> Step | None:
    channel = "pager" if severity(conv.user_text) == "critical" else "slack"
    return conv.step("notify_human", ticket_id=ticket_id, channel=channel)


def _ticket_id(conv: Conversation) -> tuple[str | None, str | None]:
    """(ticket id, error) from the create_ticket result, once there is one."""
    step = _ticket_step(conv)
    made = conv.result(step.name, step.arguments) if step else None
    if made is None:
        return None, None
    if not made.ok:
        return None, replies.failed("open the incident ticket", made)
    ticket_id = made.field("ticket_id")
    return (ticket_id, None) if isinstance(ticket_id, str) else (None, "I couldn't read the new ticket's ID.")


def steps(conv: Conversation, ask: Ask) -> Iterator[Step]:
    if not _is_case(conv, ask):
        return
    ticket = _ticket_step(conv)
    if ticket is None:
        return
    yield ticket
    ticket_id, _ = _ticket_id(conv)
    if ticket_id is not None:
        notify = _notify_step(conv, ticket_id)
        if notify is not None:
            yield notify


def answer(conv: Conversation, ask: Ask) -> str:
    if not _is_case(conv, ask):
        return replies.small_talk(conv, ask) or replies.refusal(conv)
    if conv.customer_id is None:
        return "Which customer is this about? I need their 5-digit customer ID to open an incident ticket."
    ticket_id, error = _ticket_id(conv)
    if ticket_id is None:
        return error or "I'm sorry, I couldn't open the incident ticket."
    level = severity(conv.user_text)
    text = (
        f"Opened incident ticket {ticket_id} (severity {level}) for customer {conv.customer_id}; "
        "it is recorded as a DORA Art. 17 incident record."
    )
    notify = _notify_step(conv, ticket_id)
    sent = conv.result(notify.name, notify.arguments) if notify else None
    if notify is not None and sent is not None and sent.ok:
        return f"{text} The on-call team has been notified by {notify.arguments.get('channel', 'slack')}."
    if sent is not None:
        return f"{text} {replies.failed('notify the on-call team', sent)}"
    return text
