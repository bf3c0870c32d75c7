"""OpenAI Chat Completions (`POST /v1/chat/completions`), to and from the neutral types.

The same shape is spoken by Ollama, vLLM and most gateways, so this is also the
"OpenAI-compatible" wire. Two things the neutral types carry have no field here:
a tool message's tool name (recovered from the assistant call with the same id)
and a tool result's error flag, which travels as a `[tool error] ` prefix on the
content so that the model, too, can see the call failed.
"""

from __future__ import annotations

import json
import time
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

TOOL_ERROR_PREFIX = "[tool error] "

_FINISH: dict[StopReason, str] = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}


# -- requests -------------------------------------------------------------------------------------


def request_to_wire(req: ModelRequest, *, stream: bool = False) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": req.system}] if req.system else []
    messages += [_message_to_wire(m, i) for i, m in enumerate(req.messages)]
    body: dict[str, Any] = {"model": req.model, "messages": messages, "max_tokens": req.max_tokens}
    if req.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
            }
            for t in req.tools
        ]
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _message_to_wire(m: Message, index: int) -> dict[str, Any]:
    if m.role == "user":
        return {"role": "user", "content": m.text}
    if m.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": m.text if m.text or not m.tool_calls else None}
        if m.tool_calls:
            out["tool_calls"] = [_call_to_wire(c) for c in m.tool_calls]
        return out
    if m.tool_call_id is None:
        raise WireError(f"messages[{index}]: a tool message needs the tool_call_id it answers")
    content = TOOL_ERROR_PREFIX + m.text if m.is_error else m.text
    return {"role": "tool", "tool_call_id": m.tool_call_id, "content": content}


def _call_to_wire(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def _call_from_wire(c: Fields) -> ToolCall:
    if c.text("type", "function") != "function":
        c.fail("type", f"only function tool calls are supported, got {c.get('type')!r}")
    fn = c.obj("function")
    arguments = json_object(fn.text("arguments", ""), fn.where("arguments"), c.error)
    return ToolCall(id=c.text("id"), name=fn.text("name"), arguments=arguments)


def request_from_wire(body: Any) -> tuple[ModelRequest, bool]:
    """The neutral request in a Chat Completions body, and whether it asked to stream."""
    f = Fields(body, "", WireError)
    raw_messages = f.items("messages")
    if not raw_messages:
        f.fail("messages", "at least one message is required")
    system: list[str] = []
    messages: list[Message] = []
    names: dict[str, str] = {}  # tool call id -> tool name, to label the tool messages
    for m in raw_messages:
        role = m.text("role")
        text = text_of(m.get("content"), m.where("content"), WireError)
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            messages.append(Message(role="user", text=text))
        elif role == "assistant":
            calls = tuple(_call_from_wire(c) for c in m.items("tool_calls", []))
            names.update((c.id, c.name) for c in calls)
            messages.append(Message(role="assistant", text=text, tool_calls=calls))
        elif role == "tool":
            call_id = m.text("tool_call_id")
            is_error = text.startswith(TOOL_ERROR_PREFIX)
            messages.append(
                Message(
                    role="tool",
                    text=text.removeprefix(TOOL_ERROR_PREFIX),
                    tool_call_id=call_id,
                    tool_name=names.get(call_id),
                    is_error=is_error,
                )
            )
        else:
            m.fail("role", f"unknown role {role!r}; expected system, developer, user, assistant or tool")
    tools = []
    for t in f.items("tools", []):
        if t.text("type") != "function":
            t.fail("type", f"only function tools are supported, got {t.get('type')!r}")
        fn = t.obj("function")
        tools.append(
            ToolSpec(
                name=fn.text("name"),
                description=fn.text("description", ""),
                input_schema=fn.mapping("parameters", {"type": "object", "properties": {}}),
            )
        )
    key = "max_completion_tokens" if f.has("max_completion_tokens") else "max_tokens"
    max_tokens = f.integer(key, 1024)
    if max_tokens < 1:
        f.fail(key, "must be at least 1")
    request = ModelRequest(
        model=f.text("model"),
        system="\n".join(system),
        messages=tuple(messages),
        tools=tuple(tools),
        max_tokens=max_tokens,
        temperature=f.number("temperature", None),
    )
    return request, f.boolean("stream", False)


# -- replies --------------------------------------------------------------------------------------


def _stop_reason(finish: str | None, has_calls: bool) -> StopReason:
    if finish == "length":
        return "max_tokens"
    if finish in ("tool_calls", "function_call") or has_calls:
        return "tool_use"
    return "end_turn"


def _usage_to_wire(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _usage_from_wire(u: Fields) -> Usage:
    return Usage(input_tokens=u.integer("prompt_tokens", 0), output_tokens=u.integer("completion_tokens", 0))


def reply_to_wire(reply: ModelReply) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if reply.text or not reply.tool_calls else None,
        "refusal": None,
    }
    if reply.tool_calls:
        message["tool_calls"] = [_call_to_wire(c) for c in reply.tool_calls]
    return {
        "id": reply.response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _FINISH[reply.stop_reason]}
        ],
        "usage": _usage_to_wire(reply.usage),
    }


def reply_from_wire(body: Any) -> ModelReply:
    f = Fields(body, "", ModelError)
    choices = f.items("choices")
    if not choices:
        f.fail("choices", "the reply has no choices")
    choice = choices[0]
    message = choice.obj("message")
    text = text_of(message.get("content"), message.where("content"), ModelError)
    if not text and isinstance(message.get("refusal"), str):
        text = message.get("refusal")
    calls = tuple(_call_from_wire(c) for c in message.items("tool_calls", []))
    return ModelReply(
        text=text,
        tool_calls=calls,
        model=f.text("model", ""),
        stop_reason=_stop_reason(choice.text("finish_reason", None), bool(calls)),
        usage=_usage_from_wire(f.obj("usage")) if f.has("usage") else Usage(),
        response_id=f.text("id", ""),
    )


def error_to_wire(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """An error body as the API sends it, e.g. kind "invalid_request_error", code "model_not_found"."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_message(body: Any) -> str:
    """`code: message` from an error body, or the body itself."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        kind = error.get("code") or error.get("type")
        return f"{kind}: {error['message']}" if kind else error["message"]
    if isinstance(error, str):  # some OpenAI-compatible servers (Ollama) send a bare string
        return error
    return json.dumps(body)[:500]


# -- streams --------------------------------------------------------------------------------------


def reply_to_stream(reply: ModelReply) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` payloads of a streamed reply; the last carries usage, no choices."""
    base = {
        "id": reply.response_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in text_pieces(reply.text)]
    for index, call in enumerate(reply.tool_calls):
        head = {"index": index, "id": call.id, "type": "function"}
        chunks.append(chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]}))
        for piece in halves(json.dumps(call.arguments)):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    chunks.append(chunk({}, _FINISH[reply.stop_reason]))
    chunks.append({**base, "choices": [], "usage": _usage_to_wire(reply.usage)})
    return chunks


def reply_from_stream(chunks: list[dict[str, Any]]) -> ModelReply:
    """Reassemble a streamed reply; `ModelError` if a chunk is malformed or no finish_reason came."""
    response_id = model = ""
    texts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage = Usage()
    for n, raw in enumerate(chunks):
        c = Fields(raw, f"chunk[{n}]", ModelError)
        response_id = response_id or c.text("id", "")
        model = model or c.text("model", "")
        if c.has("usage"):
            usage = _usage_from_wire(c.obj("usage"))
        for choice in c.items("choices", []):
            if choice.integer("index", 0) != 0:
                continue
            finish = choice.text("finish_reason", None) or finish
            if not choice.has("delta"):
                continue
            delta = choice.obj("delta")
            if delta.has("content"):
                texts.append(delta.text("content"))
            for tc in delta.items("tool_calls", []):
                slot = calls.setdefault(tc.integer("index"), {"id": "", "name": "", "arguments": []})
                slot["id"] = slot["id"] or tc.text("id", "")
                if tc.has("function"):
                    fn = tc.obj("function")
                    slot["name"] = slot["name"] or fn.text("name", "")
                    slot["arguments"].append(fn.text("arguments", ""))
    if finish is None:
        raise ModelError("the stream ended without a finish_reason")
    tool_calls = tuple(
        ToolCall(
            id=slot["id"],
            name=slot["name"],
            arguments=json_object("".join(slot["arguments"]), f"tool_calls[{i}].arguments", ModelError),
        )
        for i, slot in sorted(calls.items())
    )
    return ModelReply(
        text="".join(texts),
        tool_calls=tool_calls,
        model=model,
        stop_reason=_stop_reason(finish, bool(tool_calls)),
        usage=usage,
        response_id=response_id,
    )
