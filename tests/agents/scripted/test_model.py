"""ScriptedModel as a ModelClient: deterministic, honest about usage, and never raises."""

from __future__ import annotations

import math

import pytest

from tests.agents.scripted.harness import SEED_PROMPT, SUPPORT_TOOLS, Bank, drive, model
from trustusbank.agents.model.types import Message, ModelClient, ModelRequest, ToolCall, ToolSpec
from trustusbank.agents.scripted import planner, replies
from trustusbank.agents.scripted.model import ScriptedModel

ODD_REQUESTS = [
    ModelRequest("m", "", ()),
    ModelRequest("m", "sys", (Message("assistant", "hi"),)),
    ModelRequest("m", "", (Message("user", ""),)),
    ModelRequest("m", "", (Message("user", "customer 12345 balance"),)),  # no tools on offer
    ModelRequest(
        "m",
        "",
        (
            Message("user", "customer 12345: balance and transactions"),
            Message("tool", "not json at all", tool_call_id="nobody", tool_name="mystery"),
            Message("tool", '{"half": ', tool_name="get_balance"),
        ),
        (ToolSpec("get_balance", "", {"type": "object"}),),
    ),
    ModelRequest(
        "m",
        "",
        (
            Message("user", "customer 12345 balance in USD"),
            Message("assistant", "", (ToolCall("x", "get_balance", {}),)),
        ),
        (ToolSpec("get_balance", "", {"type": "object", "properties": {"customer_id": {"type": "string"}}}),),
    ),
    ModelRequest(
        "m",
        "",
        (Message("user", "customer 12345 balance"),),
        (ToolSpec("get_balance", "", {"properties": "not a dict", "required": 7}),),  # type: ignore[dict-item]
    ),
]


@pytest.mark.parametrize("request_", ODD_REQUESTS)
async def test_odd_input_gets_a_polite_text_reply(request_: ModelRequest) -> None:
    reply = await model().complete(request_)
    assert reply.stop_reason in ("end_turn", "tool_use")
    assert reply.text != replies.PLANNING_FAILED  # handled, not caught by the safety net
    if reply.stop_reason == "end_turn":
        assert reply.text
        assert reply.tool_calls == ()
    offered = {t.name for t in request_.tools}
    assert all(c.name in offered for c in reply.tool_calls)


async def test_a_planning_bug_is_an_apology(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> planner.Decision:
        raise RuntimeError("bug")

    monkeypatch.setattr(planner, "decide", broken)
    reply = await model().complete(ModelRequest("m", "", (Message("user", "hi"),)))
    assert reply.stop_reason == "end_turn"
    assert reply.text.startswith("I'm sorry")


async def test_identical_requests_give_identical_replies(bank: Bank) -> None:
    tools = await bank.tools(SUPPORT_TOOLS)
    a = await drive(model(), tools, SEED_PROMPT)
    b = await drive(ScriptedModel(gullibility=model().gullibility), tools, SEED_PROMPT)
    assert a.replies == b.replies
    ids = [c.id for c in a.calls]
    assert len(set(ids)) == len(ids)
    assert len({r.response_id for r in a.replies}) == len(a.replies)


async def test_usage_estimates_a_token_per_four_characters(bank: Bank) -> None:
    run = await drive(model(), await bank.tools(SUPPORT_TOOLS), SEED_PROMPT)
    final = run.reply
    assert final.usage.output_tokens == math.ceil(len(final.text) / 4)
    inputs = [r.usage.input_tokens for r in run.replies]
    assert inputs == sorted(inputs)
    assert inputs[0] < inputs[-1]
    assert inputs[0] > math.ceil(len(SEED_PROMPT) / 4)  # the tool schemas count too


async def test_max_tokens_truncates_the_answer() -> None:
    request = ModelRequest("m", "", (Message("user", "Book me a flight"),), max_tokens=5)
    reply = await model().complete(request)
    assert reply.stop_reason == "max_tokens"
    assert len(reply.text) == 20


async def test_identity_and_protocol() -> None:
    scripted = ScriptedModel("my-model", model().gullibility)
    client: ModelClient = scripted
    assert client.provider == "scripted"
    assert client.model == "my-model"
    reply = await client.complete(ModelRequest("", "", (Message("user", "hello"),)))
    assert reply.model == "my-model"
    assert reply.text.startswith("Hello!")
    await client.aclose()
