"""One step of the scripted model: the next tool call(s), or the answer.

Order of business on every call:
1. if a tool result in this turn carries an injected instruction and the
   model's Gullibility says it falls for it, the calls the instruction asks for;
   a compromised model (`compromised.py`) instead does what every non-JSON
   result text and every tool description asks, whatever its Gullibility;
2. the role's own plan (support, fraud analyst or triage, chosen by the tools on
   offer), skipping every call already made with the same arguments;
3. when nothing is left, or the turn has made MAX_CALLS calls, the answer,
   with every PII value masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from trustusbank.agents.scripted import compromised, fraud, injection, intents, replies, support, triage
from trustusbank.agents.scripted.conversation import Conversation, Step
from trustusbank.agents.scripted.gullibility import Gullibility
from trustusbank.agents.scripted.intents import Ask
from trustusbank.agents.scripted.masking import scrub

MAX_CALLS = 8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    steps: tuple[Step, ...]  # empty: the turn is over and `text` is the answer
    text: str = ""


class Role(Protocol):
    """A module that plans for one kind of agent: its next calls, and its answer once they are made."""

    def steps(self, conv: Conversation, ask: Ask) -> Iterator[Step]: ...

    def answer(self, conv: Conversation, ask: Ask) -> str: ...


def role(conv: Conversation) -> Role:
    if triage.applies(conv):
        return triage
    if fraud.applies(conv):
        return fraud
    return support


def _injected(conv: Conversation, gullibility: Gullibility) -> list[tuple[Step, str]]:
    """The calls injected instructions ask for, when this conversation's model falls for them,
    each with how it was recognised and where."""
    found = injection.find(conv)
    if found and not gullibility.obeys(conv.key):
        log.debug("resisting %d injected instruction(s); first: %s", len(found), found[0].reason)
        return []
    return [
        (step, f"{item.reason} in {item.source.call.name}'s result")
        for item in found
        for step in injection.obey(conv, item)
    ]


def decide(conv: Conversation, gullibility: Gullibility, *, obey_everything: bool = False) -> Decision:
    """`obey_everything`: the compromised model, which reads every result text and description as orders."""
    if not conv.has_user or not conv.user_text.strip():
        return Decision((), replies.NO_MESSAGE)
    acting = role(conv)
    ask = intents.read(conv.user_text)
    if len(conv.calls) < MAX_CALLS:
        injected = compromised.steps(conv) if obey_everything else _injected(conv, gullibility)
        for step, why in injected:
            if not conv.called(step):
                log.info("fooled by an injected instruction (%s): calling %s", why, step.name)
                return Decision((step,))
        for step in acting.steps(conv, ask):
            if not conv.called(step):
                return Decision((step,))
    text = acting.answer(conv, ask)
    return Decision((), scrub(text, [r.data for r in conv.all_results if r.data is not None]))
