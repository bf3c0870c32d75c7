"""Anthropic Messages (`POST /v1/messages`), to and from the neutral types.

The shapes differ from OpenAI's in ways that matter for a tool loop: the system
prompt is a top-level field, tool calls are `tool_use` content blocks, and tool
results are `tool_result` blocks inside a *user* message. Consecutive neutral
`tool` messages therefore become one user message (the API wants every result
for an assistant turn's calls in the next message), and on the way back each
block becomes its own `tool` message again.
"""

from __future__ import annotations

import json
from typing import Any

from trustusbank.agents.model.types import (
    Message,
    ModelError,
    ModelReply,
    ModelRequest,
    StopReason,
    ToolCall,
    ToolSpec,
    Usage,
)
from trustusbank.agents.model.wire import WireError
from trustusbank.agents.model.wire.fields import Fields, json_object, text_of
from trustusbank.agents.model.wire.sse import halves, text_pieces

API_VERSION = "2023-06-01"

# Blocks a model may return that carry nothing the agent loop acts on.
_SKIPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


# -- requests -------------------------------------------------------------------------------------


def request_to_wire(req: ModelRequest, *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": req.model, "max_tokens": req.max_tokens}
    if req.system:
        body["system"] = req.system
    body["messages"] = _messages_to_wire(req.messages)
    if req.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in req.tools
        ]
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if stream:
        body["stream"] = True
    return body


def _messages_to_wire(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    results: list[dict[str, Any]] | None = None  # the tool_result blocks of the open user message
    for i, m in enumerate(messages):
        if m.role == "tool":
            if m.tool_call_id is None:
                raise WireError(f"messages[{i}]: a tool message needs the tool_call_id it answers")
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.text}
            if m.is_error:
                block["is_error"] = True
            if results is None:
                results = []
                out.append({"role": "user", "content": results})
            results.append(block)
            continue
        results = None
        if m.role == "user":
            out.append({"role": "user", "content": m.text})
        elif m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": "assistant", "content": m.text})
    return out


def request_from_wire(body: Any) -> tuple[ModelRequest, bool]:
    """The neutral request in a Messages body, and whether it asked to stream."""
    f = Fields(body, "", WireError)
    raw_messages = f.items("messages")
    if not raw_messages:
        f.fail("messages", "at least one message is required")
    names: dict[str, str] = {}  # tool_use id -> tool name, to label the tool messages
    messages: list[Message] = []
    for m in raw_messages:
        role = m.text("role")
        if role not in ("user", "assistant"):
            m.fail("role", f"expected 'user' or 'assistant', got {role!r} (the system prompt is top-level)")
        content = m.get("content")
        if isinstance(content, str):
            messages.append(Message(role=role, text=content))
        elif role == "user":
            messages += _user_blocks(m, names)
        else:
            messages.append(_assistant_blocks(m, names))
    tools = []
    for t in f.items("tools", []):
        if t.text("type", "custom") != "custom":
            t.fail("type", f"only client tools are supported, got {t.get('type')!r}")
        tools.append(
            ToolSpec(
                name=t.text("name"),
                description=t.text("description", ""),
                input_schema=t.mapping("input_schema"),
            )
        )
    max_tokens = f.integer("max_tokens")
    if max_tokens < 1:
        f.fail("max_tokens", "must be at least 1")
    request = ModelRequest(
        model=f.text("model"),
        system=text_of(f.get("system"), "system", WireError),
        messages=tuple(messages),
        tools=tuple(tools),
        max_tokens=max_tokens,
        temperature=f.number("temperature", None),
    )
    return request, f.boolean("stream", False)


def _user_blocks(m: Fields, names: dict[str, str]) -> list[Message]:
    """A user message's blocks in order: each tool_result a `tool` message, runs of text one `user`."""
    out: list[Message] = []
    texts: list[str] = []
    blocks = m.items("content")
    for b in blocks:
        kind = b.text("type")
        if kind == "text":
            texts.append(b.text("text"))
        elif kind == "tool_result":
            if texts:
                out.append(Message(role="user", text="\n".join(texts)))
                texts = []
            call_id = b.text("tool_use_id")
            out.append(
                Message(
                    role="tool",
                    text=text_of(b.get("content"), b.where("content"), WireError),
                    tool_call_id=call_id,
                    tool_name=names.get(call_id),
                    is_error=b.boolean("is_error", False),
                )
            )
        else:
            b.fail("type", f"only text and tool_result blocks are supported in user messages, got {kind!r}")
    if texts or not blocks:
        out.append(Message(role="user", text="\n".join(texts)))
    return out


def _assistant_blocks(m: Fields, names: dict[str, str]) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for b in m.items("content"):
        kind = b.text("type")
        if kind == "text":
            texts.append(b.text("text"))
        elif kind == "tool_use":
            call = ToolCall(id=b.text("id"), name=b.text("name"), arguments=b.mapping("input"))
            names[call.id] = call.name
            calls.append(call)
        elif kind not in _SKIPPED_BLOCKS:
            b.fail("type", f"only text and tool_use blocks are supported in assistant messages, got {kind!r}")
    return Message(role="assistant", text="\n".join(texts), tool_calls=tuple(calls))


# -- replies --------------------------------------------------------------------------------------


def _stop_reason(stop: str | None, has_calls: bool) -> StopReason:
    if stop == "max_tokens":
        return "max_tokens"
    # end_turn, stop_sequence, refusal, pause_turn: the turn is over unless it asked for tools
    return "tool_use" if stop == "tool_use" or has_calls else "end_turn"


def _content_to_wire(reply: ModelReply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in reply.tool_calls
    ]
    return blocks


def reply_to_wire(reply: ModelReply) -> dict[str, Any]:
    return {
        "id": reply.response_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": _content_to_wire(reply),
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.usage.input_tokens, "output_tokens": reply.usage.output_tokens},
    }


def reply_from_wire(body: Any) -> ModelReply:
    f = Fields(body, "", ModelError)
    if f.get("type") == "error":
        raise ModelError(f"the reply is an error: {error_message(body)}")
    if f.text("type", "message") != "message":
        f.fail("type", f"expected 'message', got {f.get('type')!r}")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for b in f.items("content"):
        kind = b.text("type")
        if kind == "text":
            texts.append(b.text("text"))
        elif kind == "tool_use":
            calls.append(ToolCall(id=b.text("id"), name=b.text("name"), arguments=b.mapping("input")))
    usage = Usage()
    if f.has("usage"):
        u = f.obj("usage")
        usage = Usage(input_tokens=u.integer("input_tokens", 0), output_tokens=u.integer("output_tokens", 0))
    return ModelReply(
        text="\n".join(texts),
        tool_calls=tuple(calls),
        model=f.text("model", ""),
        stop_reason=_stop_reason(f.text("stop_reason", None), bool(calls)),
        usage=usage,
        response_id=f.text("id", ""),
    )


def error_to_wire(message: str, kind: str) -> dict[str, Any]:
    """An error body as the API sends it, e.g. kind "invalid_request_error", "not_found_error"."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_message(body: Any) -> str:
    """`type: message` from an Anthropic error body, or the body itself."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return f"{error.get('type', 'error')}: {error['message']}"
    return json.dumps(body)[:500]


# -- streams --------------------------------------------------------------------------------------


def reply_to_stream(reply: ModelReply) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a streamed reply, in the order the API sends them."""
    start = {**reply_to_wire(reply), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": reply.usage.input_tokens, "output_tokens": 0}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]

    def block(index: int, head: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": head})
        )
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))

    index = 0
    if reply.text:
        block(
            0,
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": p} for p in text_pieces(reply.text)],
        )
        index = 1
    for call in reply.tool_calls:
        pieces = halves(json.dumps(call.arguments))
        head = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        block(index, head, [{"type": "input_json_delta", "partial_json": p} for p in pieces])
        index += 1
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": reply.usage.output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def reply_from_stream(events: list[tuple[str, dict[str, Any]]]) -> ModelReply:
    """Reassemble a streamed reply; `ModelError` on an error event or a stream cut short."""
    response_id = model = ""
    usage = Usage()
    stop: str | None = None
    blocks: dict[int, dict[str, Any]] = {}
    finished = False
    for n, (name, data) in enumerate(events):
        e = Fields(data, f"event[{n}] {name}", ModelError)
        kind = e.text("type", name)
        if kind == "message_start":
            message = e.obj("message")
            response_id, model = message.text("id", ""), message.text("model", "")
            if message.has("usage"):
                u = message.obj("usage")
                usage = Usage(
                    input_tokens=u.integer("input_tokens", 0), output_tokens=u.integer("output_tokens", 0)
                )
        elif kind == "content_block_start":
            head = e.obj("content_block")
            blocks[e.integer("index")] = {
                "type": head.text("type"),
                "text": [head.text("text", "")],
                "id": head.text("id", ""),
                "name": head.text("name", ""),
                "input": head.mapping("input", {}),
                "json": [],
            }
        elif kind == "content_block_delta":
            index = e.integer("index")
            if index not in blocks:
                e.fail("index", f"delta for block {index}, which was never started")
            delta = e.obj("delta")
            if delta.get("type") == "text_delta":
                blocks[index]["text"].append(delta.text("text"))
            elif delta.get("type") == "input_json_delta":
                blocks[index]["json"].append(delta.text("partial_json"))
        elif kind == "message_delta":
            stop = e.obj("delta").text("stop_reason", None) or stop
            if e.has("usage"):
                u = e.obj("usage")
                usage = Usage(
                    input_tokens=u.integer("input_tokens", usage.input_tokens),
                    output_tokens=u.integer("output_tokens", usage.output_tokens),
                )
        elif kind == "message_stop":
            finished = True
        elif kind == "error":
            raise ModelError(f"the stream carried an error: {error_message(data)}")
    if not finished:
        raise ModelError("the stream ended before message_stop")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for index, b in sorted(blocks.items()):
        if b["type"] == "text":
            texts.append("".join(b["text"]))
        elif b["type"] == "tool_use":
            raw = "".join(b["json"])
            arguments = json_object(raw, f"content[{index}].input", ModelError) if raw else b["input"]
            calls.append(ToolCall(id=b["id"], name=b["name"], arguments=arguments))
    return ModelReply(
        text="\n".join(texts),
        tool_calls=tuple(calls),
        model=model,
        stop_reason=_stop_reason(stop, bool(calls)),
        usage=usage,
        response_id=response_id,
    )
