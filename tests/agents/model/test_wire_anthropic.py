"""The Messages wire: tool results as user blocks, top-level system, stop reasons, streams, bad input."""

from __future__ import annotations

import pytest

from trustusbank.agents.model.types import (
    Message,
    ModelError,
    ModelReply,
    ModelRequest,
    ToolCall,
    ToolSpec,
    Usage,
)
from trustusbank.agents.model.wire import WireError
from trustusbank.agents.model.wire.anthropic import (
    reply_from_stream,
    reply_from_wire,
    reply_to_stream,
    reply_to_wire,
    request_from_wire,
    request_to_wire,
)

CALL_A = ToolCall(id="toolu_a", name="get_balance", arguments={"account": "A"})
CALL_B = ToolCall(id="toolu_b", name="get_balance", arguments={"account": "B"})
TOOL_LOOP = ModelRequest(
    model="claude-sonnet-4-5",
    system="You are a bank assistant.",
    messages=(
        Message(role="user", text="Balances of A and B?"),
        Message(role="assistant", text="Looking both up.", tool_calls=(CALL_A, CALL_B)),
        Message(role="tool", text="100.00 GBP", tool_call_id="toolu_a", tool_name="get_balance"),
        Message(
            role="tool",
            text="no such account",
            tool_call_id="toolu_b",
            tool_name="get_balance",
            is_error=True,
        ),
        Message(role="user", text="Thanks; and C?"),
    ),
    tools=(ToolSpec(name="get_balance", description="Balance of one account"),),
    max_tokens=512,
)


def test_a_tool_loop_on_the_wire() -> None:
    body = request_to_wire(TOOL_LOOP)
    assert body["system"] == "You are a bank assistant."
    assert body["max_tokens"] == 512
    assert "temperature" not in body
    assert body["messages"] == [
        {"role": "user", "content": "Balances of A and B?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking both up."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_balance", "input": {"account": "A"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_balance", "input": {"account": "B"}},
            ],
        },
        # both results in ONE user message, right after the calls
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "100.00 GBP"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_b",
                    "content": "no such account",
                    "is_error": True,
                },
            ],
        },
        {"role": "user", "content": "Thanks; and C?"},
    ]
    assert body["tools"] == [
        {
            "name": "get_balance",
            "description": "Balance of one account",
            "input_schema": TOOL_LOOP.tools[0].input_schema,
        }
    ]
    assert request_from_wire(body) == (TOOL_LOOP, False)


def test_what_other_clients_send() -> None:
    """System as blocks, tool_result content as blocks, text after results, thinking blocks."""
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Ping"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "...", "signature": "sig"},
                    {"type": "tool_use", "id": "t1", "name": "ping", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "pong"}],
                    },
                    {"type": "text", "text": "What did it say?"},
                ],
            },
        ],
        "tools": [{"name": "ping", "input_schema": {"type": "object"}}],
        "stream": True,
        "metadata": {"user_id": "u"},
    }
    request, stream = request_from_wire(body)
    assert stream is True
    assert request.system == "Be brief."
    assert request.messages == (
        Message(role="user", text="Ping"),
        Message(role="assistant", tool_calls=(ToolCall(id="t1", name="ping", arguments={}),)),
        Message(role="tool", text="pong", tool_call_id="t1", tool_name="ping"),
        Message(role="user", text="What did it say?"),
    )
    assert request.tools == (ToolSpec(name="ping", description="", input_schema={"type": "object"}),)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens: required"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages: at least one message"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            r"messages\[0\].role: expected 'user' or 'assistant'",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}],
            },
            r"messages\[0\].content\[0\].type: only text and tool_result",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}],
                    }
                ],
            },
            r"messages\[0\].content\[0\].input: expected an object, got str",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"name": "f"}],
            },
            r"tools\[0\].input_schema: required",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            r"tools\[0\].type: only client tools",
        ),
        (
            {"model": "m", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]},
            "max_tokens: expected an integer",
        ),
    ],
)
def test_bad_requests_name_the_field(body: object, field: str) -> None:
    with pytest.raises(WireError, match=field):
        request_from_wire(body)


def test_reply_shapes() -> None:
    reply = ModelReply(
        text="Checking.",
        tool_calls=(CALL_A,),
        model="claude-sonnet-4-5",
        stop_reason="tool_use",
        usage=Usage(input_tokens=40, output_tokens=12),
        response_id="msg_1",
    )
    body = reply_to_wire(reply)
    assert body == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_a", "name": "get_balance", "input": {"account": "A"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 12},
    }
    assert reply_from_wire(body) == reply


@pytest.mark.parametrize(
    ("stop", "with_call", "expected"),
    [
        ("end_turn", False, "end_turn"),
        ("stop_sequence", False, "end_turn"),
        ("refusal", False, "end_turn"),
        ("max_tokens", False, "max_tokens"),
        ("tool_use", True, "tool_use"),
        ("pause_turn", True, "tool_use"),
    ],
)
def test_stop_reasons(stop: str, with_call: bool, expected: str) -> None:
    content = [{"type": "tool_use", "id": "t", "name": "f", "input": {}}] if with_call else []
    body = {"type": "message", "role": "assistant", "content": content, "stop_reason": stop}
    assert reply_from_wire(body).stop_reason == expected


def test_error_bodies_and_malformed_replies_are_model_errors() -> None:
    with pytest.raises(ModelError, match="overloaded_error: Overloaded"):
        reply_from_wire({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    with pytest.raises(ModelError, match="content: required"):
        reply_from_wire({"type": "message", "role": "assistant"})
    with pytest.raises(ModelError, match=r"content\[0\].input: expected an object"):
        reply_from_wire(
            {"type": "message", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}]}
        )


def test_stream_events() -> None:
    reply = ModelReply(
        text="One moment.",
        tool_calls=(CALL_A, CALL_B),
        model="claude-sonnet-4-5",
        stop_reason="tool_use",
        usage=Usage(9, 21),
        response_id="msg_7",
    )
    events = reply_to_stream(reply)
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [s["type"] for s in starts] == ["text", "tool_use", "tool_use"]
    assert starts[1] == {"type": "tool_use", "id": "toolu_a", "name": "get_balance", "input": {}}
    json_deltas = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 1]
    assert {d["type"] for d in json_deltas} == {"input_json_delta"}
    assert len(json_deltas) == 2  # arguments arrive split mid-JSON
    assert names.count("content_block_stop") == 3
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-2][1]["usage"] == {"output_tokens": 21}
    assert reply_from_stream(events) == reply


def test_stream_errors() -> None:
    events = reply_to_stream(ModelReply(text="hi", tool_calls=(), model="m", stop_reason="end_turn"))
    with pytest.raises(ModelError, match="message_stop"):
        reply_from_stream(events[:-1])
    overloaded = ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    with pytest.raises(ModelError, match="overloaded_error"):
        reply_from_stream([*events[:3], overloaded])
