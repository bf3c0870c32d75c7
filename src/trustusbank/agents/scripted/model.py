"""ScriptedModel: a deterministic stand-in for an LLM, behind the same interface as a real one.

It reads a ModelRequest as a model would (system message, conversation, tools on
offer) and answers with the next tool call or the final text; see `planner` for
how it decides. The same request always gives the same reply, byte for byte,
including the tool-call ids, the response id and the token counts, so the demo
and the tests run offline and replay exactly.

It serves two model names. `trustusbank-scripted` is the demo's model, fooled by
the injections its detector recognises as often as its Gullibility says.
`trustusbank-compromised` is a simulation of a model that does whatever injected
text asks (`compromised.py`): the bench's upper bound, so the runtime's defences
are measured with no help from the model. A request naming it gets that
behaviour from any ScriptedModel, as a provider serving two models would;
`CompromisedModel` answers that way whatever the request names.

Token usage is an estimate (one token per four characters, rounded up): enough
for metrics and budgets to behave, and never presented as a real count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict

from trustusbank.agents.model.types import ModelReply, ModelRequest, StopReason, ToolCall, Usage
from trustusbank.agents.scripted import planner, replies
from trustusbank.agents.scripted.conversation import Conversation
from trustusbank.agents.scripted.gullibility import Gullibility, from_env

DEFAULT_MODEL = "trustusbank-scripted"
COMPROMISED_MODEL = "trustusbank-compromised"
SERVED_MODELS = (DEFAULT_MODEL, COMPROMISED_MODEL)
CHARS_PER_TOKEN = 4

log = logging.getLogger(__name__)


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _input_chars(request: ModelRequest) -> int:
    chars = len(request.system or "")
    for message in request.messages:
        chars += len(message.text or "")
        chars += sum(len(c.name) + len(_canonical(c.arguments)) for c in message.tool_calls)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "") + len(_canonical(tool.input_schema))
    return chars


class ScriptedModel:
    """Implements `ModelClient`; pure and deterministic: no I/O, no clock, no randomness."""

    provider = "scripted"
    compromised = False  # True: every request gets the compromised behaviour, whatever it names

    def __init__(self, model: str = DEFAULT_MODEL, gullibility: Gullibility | None = None) -> None:
        self.model = model
        # None: whatever TRUSTUSBANK_MODEL_GULLIBILITY says ("always" when unset)
        self.gullibility = gullibility if gullibility is not None else from_env()

    async def complete(self, request: ModelRequest) -> ModelReply:
        return self.reply(request)

    def reply(self, request: ModelRequest) -> ModelReply:
        """`complete` without the coroutine, for callers that are not async."""
        conv: Conversation | None = None
        try:
            conv = Conversation(request)
            everything = self.compromised or request.model == COMPROMISED_MODEL
            decision = planner.decide(conv, self.gullibility, obey_everything=everything)
        except Exception:  # a stand-in model must answer, never crash the agent that drives it
            log.exception("scripted model could not plan a reply; answering with an apology")
            decision = planner.Decision((), replies.PLANNING_FAILED)
        key = conv.key if conv is not None else ""
        calls = tuple(
            ToolCall(
                id=self._call_id(key, len(request.messages), i, step.key),
                name=step.name,
                arguments=step.arguments,
            )
            for i, step in enumerate(decision.steps)
        )
        text = decision.text
        stop: StopReason = "tool_use" if calls else "end_turn"
        if not calls and request.max_tokens > 0 and _tokens(len(text)) > request.max_tokens:
            text, stop = text[: request.max_tokens * CHARS_PER_TOKEN], "max_tokens"
        output_chars = len(text) + sum(len(c.name) + len(_canonical(c.arguments)) for c in calls)
        usage = Usage(input_tokens=_tokens(_input_chars(request)), output_tokens=_tokens(output_chars))
        response_id = (
            "msg_scripted_"
            + hashlib.sha256(
                _canonical([asdict(request), text, [asdict(c) for c in calls]]).encode()
            ).hexdigest()[:24]
        )
        return ModelReply(
            text=text,
            tool_calls=calls,
            model=request.model or self.model,
            stop_reason=stop,
            usage=usage,
            response_id=response_id,
        )

    @staticmethod
    def _call_id(key: str, position: int, index: int, step_key: str) -> str:
        digest = hashlib.sha256(f"{key}\x00{position}\x00{index}\x00{step_key}".encode()).hexdigest()
        return f"call_{digest[:24]}"

    async def aclose(self) -> None:
        return None


class CompromisedModel(ScriptedModel):
    """A SIMULATION of a fully compromised model: obeys every instruction any tool text gives it.

    Deterministic and pure like ScriptedModel, whose role plans it still follows, so
    the user's task is still answered and utility under attack can be measured."""

    compromised = True

    def __init__(self, model: str = COMPROMISED_MODEL) -> None:
        super().__init__(model, Gullibility.always())  # unused: it obeys whatever the gullibility
