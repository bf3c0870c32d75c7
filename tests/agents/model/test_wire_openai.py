"""The Chat Completions wire: the shapes OpenAI documents, the variants clients send, and bad input."""

from __future__ import annotations

import json

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
from trustusbank.agents.model.wire.openai import (
    reply_from_stream,
    reply_from_wire,
    reply_to_stream,
    reply_to_wire,
    request_from_wire,
    request_to_wire,
)

LOOKUP = ToolSpec(
    name="get_balance",
    description="Balance of one account",
    input_schema={"type": "object", "properties": {"account": {"type": "string"}}, "required": ["account"]},
)
TOOL_LOOP = ModelRequest(
    model="gpt-4o-mini",
    system="You are a bank assistant.",
    messages=(
        Message(role="user", text="Balances of A and B?"),
        Message(
            role="assistant",
            text="Looking both up.",
            tool_calls=(
                ToolCall(id="call_a", name="get_balance", arguments={"account": "A"}),
                ToolCall(id="call_b", name="get_balance", arguments={"account": "B"}),
            ),
        ),
        Message(role="tool", text="100.00 GBP", tool_call_id="call_a", tool_name="get_balance"),
        Message(
            role="tool", text="no such account", tool_call_id="call_b", tool_name="get_balance", is_error=True
        ),
    ),
    tools=(LOOKUP,),
    max_tokens=512,
    temperature=0.2,
)


def test_a_tool_loop_on_the_wire() -> None:
    body = request_to_wire(TOOL_LOOP)
    assert body["model"] == "gpt-4o-mini"
    assert body["max_tokens"] == 512
    assert body["temperature"] == 0.2
    assert "stream" not in body
    system, user, assistant, result_a, result_b = body["messages"]
    assert system == {"role": "system", "content": "You are a bank assistant."}
    assert user == {"role": "user", "content": "Balances of A and B?"}
    assert assistant["content"] == "Looking both up."
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
    first = assistant["tool_calls"][0]
    assert first["type"] == "function"
    assert first["function"]["name"] == "get_balance"
    assert isinstance(first["function"]["arguments"], str)  # JSON in a string, as OpenAI sends it
    assert json.loads(first["function"]["arguments"]) == {"account": "A"}
    assert result_a == {"role": "tool", "tool_call_id": "call_a", "content": "100.00 GBP"}
    assert result_b["content"] == "[tool error] no such account"
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_balance",
                "description": LOOKUP.description,
                "parameters": LOOKUP.input_schema,
            },
        }
    ]
    assert request_from_wire(body) == (TOOL_LOOP, False)


def test_stream_asks_for_usage() -> None:
    body = request_to_wire(TOOL_LOOP, stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert request_from_wire(body)[1] is True


def test_assistant_with_only_tool_calls_has_null_content() -> None:
    call = ToolCall(id="c1", name="f", arguments={})
    body = request_to_wire(
        ModelRequest(model="m", system="", messages=(Message(role="assistant", tool_calls=(call,)),))
    )
    assert body["messages"] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        }
    ]


def test_what_other_clients_send() -> None:
    """List-form content, developer role, max_completion_tokens, tools without description or parameters."""
    body = {
        "model": "llama3.1",
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "system", "content": "Use tools."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "line one"}, {"type": "text", "text": "line two"}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "x", "type": "function", "function": {"name": "ping", "arguments": ""}}
                ],
            },
            {"role": "tool", "tool_call_id": "x", "content": [{"type": "text", "text": "pong"}]},
        ],
        "tools": [{"type": "function", "function": {"name": "ping"}}],
        "max_completion_tokens": 64,
        "tool_choice": "auto",
        "n": 1,
    }
    request, stream = request_from_wire(body)
    assert stream is False
    assert request.system == "Be brief.\nUse tools."
    assert request.max_tokens == 64
    assert request.messages == (
        Message(role="user", text="line one\nline two"),
        Message(role="assistant", tool_calls=(ToolCall(id="x", name="ping", arguments={}),)),
        Message(role="tool", text="pong", tool_call_id="x", tool_name="ping"),
    )
    assert request.tools == (ToolSpec(name="ping", description=""),)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model: required"),
        ({"model": "m", "messages": []}, "messages: at least one message"),
        ({"model": "m", "messages": "hi"}, "messages: expected an array, got str"),
        (
            {"model": "m", "messages": [{"role": "function", "content": "x"}]},
            "messages[0].role: unknown role",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id: required",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            "messages[0].content[0].type: only text parts",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    },
                ],
            },
            "messages[1].tool_calls[0].function.arguments: not valid JSON",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "max_tokens: must be",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"},
            "stream: expected a boolean",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web"}]},
            "tools[0].type",
        ),
        ([], "body: expected a JSON object"),
    ],
)
def test_bad_requests_name_the_field(body: object, field: str) -> None:
    with pytest.raises(WireError, match=field.replace("[", r"\[").replace("]", r"\]")):
        request_from_wire(body)


def test_reply_shapes() -> None:
    reply = ModelReply(
        text="",
        tool_calls=(ToolCall(id="call_1", name="get_balance", arguments={"account": "A"}),),
        model="gpt-4o-mini",
        stop_reason="tool_use",
        usage=Usage(input_tokens=30, output_tokens=7),
        response_id="chatcmpl-1",
    )
    body = reply_to_wire(reply)
    assert body["object"] == "chat.completion"
    assert body["id"] == "chatcmpl-1"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["role"] == "assistant"
    assert body["usage"] == {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}
    assert reply_from_wire(body) == reply


@pytest.mark.parametrize(
    ("finish", "calls", "stop"),
    [
        ("stop", [], "end_turn"),
        ("length", [], "max_tokens"),
        ("content_filter", [], "end_turn"),
        ("stop", ["c"], "tool_use"),
    ],
)
def test_finish_reasons(finish: str, calls: list[str], stop: str) -> None:
    """Some OpenAI-compatible servers say "stop" even when they called tools."""
    tool_calls = [{"id": c, "type": "function", "function": {"name": "f", "arguments": "{}"}} for c in calls]
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x", "tool_calls": tool_calls},
                "finish_reason": finish,
            }
        ]
    }
    assert reply_from_wire(body).stop_reason == stop


def test_refusal_becomes_the_text() -> None:
    body = {
        "choices": [
            {
                "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                "finish_reason": "stop",
            }
        ]
    }
    assert reply_from_wire(body).text == "I can't help with that."


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"choices": []}, "no choices"),
        ({"object": "chat.completion"}, "choices: required"),
        ({"choices": [{"message": "hi"}]}, r"choices\[0\].message: expected an object, got str"),
        (
            {
                "choices": [
                    {"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}}
                ]
            },
            "arguments: expected a JSON object, got list",
        ),
    ],
)
def test_malformed_replies_are_model_errors(body: object, problem: str) -> None:
    with pytest.raises(ModelError, match=problem):
        reply_from_wire(body)


def test_stream_chunks() -> None:
    reply = ModelReply(
        text="Let me check that.",
        tool_calls=(ToolCall(id="call_1", name="lookup", arguments={"q": "x" * 10}),),
        model="m",
        stop_reason="tool_use",
        usage=Usage(3, 4),
        response_id="chatcmpl-9",
    )
    chunks = reply_to_stream(reply)
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-9" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert len([t for t in contents if t]) == 4  # streamed by word
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"] == "call_1"
    assert calls[0]["function"]["name"] == "lookup"
    assert len(calls) == 3
    assert "".join(c["function"]["arguments"] for c in calls) == json.dumps({"q": "x" * 10})
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 7
    assert reply_from_stream(chunks) == reply


def test_a_stream_cut_short_is_a_model_error() -> None:
    chunks = reply_to_stream(ModelReply(text="hello there", tool_calls=(), model="m", stop_reason="end_turn"))
    with pytest.raises(ModelError, match="finish_reason"):
        reply_from_stream(chunks[:-2])


def test_reply_content_as_parts() -> None:
    """Some compatible servers answer with content parts rather than a string."""
    parts = [{"type": "text", "text": "A has"}, {"type": "text", "text": "100.00 GBP."}]
    body = {
        "id": "x",
        "model": "m",
        "choices": [{"message": {"role": "assistant", "content": parts}, "finish_reason": "stop"}],
    }
    reply = reply_from_wire(body)
    assert reply.text == "A has\n100.00 GBP."
    assert reply.usage == Usage()
