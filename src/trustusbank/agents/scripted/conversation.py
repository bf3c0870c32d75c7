"""The scripted model's reading of a request: what was asked, which tools it may use, what they said.

A real model re-reads the whole conversation on every call and plans its next step
from it; so does this one. Nothing is kept between calls, which is what makes it
deterministic and lets any runtime (ours, kagent's, a curl) drive it.

"The current turn" is everything after the last user message: the tool calls the
model made for that message and their results. A tool result's text is, for our
MCP servers, the JSON of the structured result; anything after that JSON (the
real rug-pull's second text block, joined with a newline) is kept apart as
`trailing`, because text a tool had no reason to send is where injections hide.

A failed call does not always come flagged. Google ADK (kagent's runtime) turns a
tool call the gateway refused into `{"error": "..."}`; a runtime that sends that
JSON on is read as the failure it is, and kagent-adk's OpenAI client, which keeps
only a result's text blocks, sends it on as an empty result: nothing came back.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from trustusbank.agents.model.types import Message, ModelRequest, ToolCall, ToolSpec

_JSON = json.JSONDecoder()
_DROP = object()

_CUSTOMER_ID = re.compile(
    r"\b(?:customer|account|client)(?:\s+(?:id|number|no\.?))?\s*[:#]?\s*(\d{5})\b", re.IGNORECASE
)
_BARE_ID = re.compile(r"(?<![\d.,£$€¥-])\b(\d{5})\b(?![.,]\d)")


def call_key(name: str, arguments: dict[str, Any]) -> str:
    """One string per (tool, arguments): how the model tells it has made a call already."""
    return json.dumps([name, arguments], sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Step:
    """A tool call the model has decided to make (its id is given when it is sent)."""

    name: str
    arguments: dict[str, Any]

    @property
    def key(self) -> str:
        return call_key(self.name, self.arguments)


@dataclass(frozen=True)
class ToolResult:
    call: ToolCall
    text: str
    is_error: bool
    data: Any  # the JSON object/array the text starts with; None when it does not start with one
    trailing: str  # the text after that JSON value; the whole text when there is none

    @property
    def ok(self) -> bool:
        return not self.is_error

    def field(self, name: str) -> Any:
        return self.data.get(name) if isinstance(self.data, dict) else None

    def records(self, name: str) -> list[dict[str, Any]]:
        """The objects in a list field ('transactions'), skipping anything else."""
        value = self.field(name)
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

    @property
    def body(self) -> str:
        """The result's text, out of its envelope if it came in one."""
        return result_body(self.text)

    def error(self) -> str:
        """A short, customer-presentable reason for a failed call."""
        text = self.body.splitlines()[0] if self.body else ""
        text = re.sub(r"^Error executing tool \S+:\s*", "", text)
        if not text:
            return "the service returned an error"
        return text if len(text) <= 200 else text[:197] + "..."


# Runtimes that pass the whole MCP CallToolResult on (Google ADK, which kagent runs, does) or wrap a
# plain value as {"result": ...}: the keys such an envelope may have.
_ENVELOPE_KEYS = frozenset(
    {
        "content",
        "structuredContent",
        "structured_content",
        "isError",
        "is_error",
        "_meta",
        "meta",
        "resultType",
    }
)


def _adk_error(data: Any) -> str | None:
    """The message of Google ADK's failed-tool shape, `{"error": "<message>"}`; None for anything else."""
    if isinstance(data, dict) and set(data) == {"error"} and isinstance(data["error"], str):
        return data["error"]
    return None


def _envelope_text(data: Any) -> str | None:
    """The joined text blocks of a CallToolResult-shaped envelope (or ADK's error message);
    None when `data` is not one."""
    if not isinstance(data, dict):
        return None
    error = _adk_error(data)
    if error is not None:
        return error
    if set(data) == {"result"}:
        inner = data["result"]
        return inner if isinstance(inner, str) else json.dumps(inner)
    blocks = data.get("content")
    if not isinstance(blocks, list) or not set(data) <= _ENVELOPE_KEYS:
        return None
    return "\n".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))


def _unwrap(data: Any) -> tuple[Any, str] | None:
    """(result, text after it) inside an envelope; None when `data` is not one."""
    text = _envelope_text(data)
    if text is None:
        return None
    if set(data) == {"result"} and not isinstance(data["result"], str):
        return data["result"], ""
    if _adk_error(data) is not None:  # a message, not a result: nothing in it is data
        return None, ""
    inner, trailing = parse_result_text(text)
    structured = data.get("structuredContent", data.get("structured_content"))
    if inner is None:  # prose: it is the result's text, not something after it
        return (structured if isinstance(structured, dict) else None), ""
    return (structured if isinstance(structured, dict) else inner), trailing


def _envelope_says_error(text: str) -> bool:
    stripped = (text or "").strip()
    if not stripped.startswith("{"):
        return False
    try:
        data = json.loads(stripped)
    except ValueError:
        return False
    if _adk_error(data) is not None:
        return True
    return _envelope_text(data) is not None and (data.get("isError") is True or data.get("is_error") is True)


def result_body(text: str) -> str:
    """What a tool said, out of its envelope if it came in one (for quoting errors and sub-agents)."""
    stripped = (text or "").strip()
    if stripped[:1] == "{":
        try:
            inner = _envelope_text(json.loads(stripped))
        except ValueError:
            inner = None
        if inner is not None:
            return inner.strip()
    return stripped


def parse_result_text(text: str) -> tuple[Any, str]:
    """Split a tool's text into the JSON value it starts with and whatever follows it.

    A result wrapped in a CallToolResult envelope is unwrapped first, so the model
    reads the same result, and the same trailing text, whichever runtime drives it.
    """
    stripped = (text or "").lstrip()
    if stripped[:1] in ("{", "["):
        try:
            data, end = _JSON.raw_decode(stripped)
        except ValueError:
            pass
        else:
            after = stripped[end:].strip()
            unwrapped = _unwrap(data)
            if unwrapped is not None:
                inner, extra = unwrapped
                return inner, "\n".join(t for t in (extra, after) if t)
            return data, after
    return None, (text or "").strip()


def _results(messages: tuple[Message, ...]) -> list[ToolResult]:
    """Pair every tool message with the call it answers (by id, else by tool name)."""
    calls: dict[str, ToolCall] = {}
    unanswered: list[ToolCall] = []
    out: list[ToolResult] = []
    for message in messages:
        if message.role == "assistant":
            for call in message.tool_calls:
                calls[call.id] = call
                unanswered.append(call)
        elif message.role == "tool":
            answered = calls.get(message.tool_call_id or "") or next(
                (c for c in unanswered if c.name == message.tool_name), None
            )
            if answered is None:
                answered = ToolCall(id=message.tool_call_id or "", name=message.tool_name or "", arguments={})
            elif answered in unanswered:
                unanswered.remove(answered)
            data, trailing = parse_result_text(message.text)
            failed = message.is_error or _envelope_says_error(message.text)
            out.append(ToolResult(answered, message.text or "", failed, data, trailing))
    return out


def customer_id_in(text: str) -> str | None:
    """'customer 12345', 'account no. 12345', 'customer ID: 12345', else a lone 5-digit number."""
    match = _CUSTOMER_ID.search(text) or _BARE_ID.search(text)
    return match.group(1) if match else None


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    found: list[Any] = (
        [declared] if isinstance(declared, str) else list(declared) if isinstance(declared, list) else []
    )
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        for option in options if isinstance(options, list) else []:
            if isinstance(option, dict):
                found.extend(_types(option))
    return {t for t in found if isinstance(t, str)}


def accepts_object(schema: Any) -> bool:
    """Whether a property's schema takes a JSON object (no declared type takes anything)."""
    if not isinstance(schema, dict):
        return True
    types = _types(schema)
    return not types or "object" in types


def _fit(value: Any, schema: Any) -> Any:
    """Bend a value to a property's schema the way a careful model would, or drop it."""
    if not isinstance(schema, dict):
        return value
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return _DROP
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, int | float) and value < low:
            value = type(value)(low)
        if isinstance(high, int | float) and value > high:
            value = type(value)(high)
    if isinstance(value, str):
        limit = schema.get("maxLength")
        if isinstance(limit, int) and len(value) > limit:
            value = value[: max(limit - 3, 0)] + "..." if limit > 3 else value[:limit]
    return value


class Conversation:
    """One request, read once."""

    def __init__(self, request: ModelRequest) -> None:
        self.request = request
        self.system = request.system or ""
        self.tools: dict[str, ToolSpec] = {}
        for tool in request.tools:
            self.tools.setdefault(tool.name, tool)
        messages = request.messages
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        self.has_user = bool(users)
        self.user_text = messages[users[-1]].text if users else ""
        self.first_user_text = messages[users[0]].text if users else ""
        self._earlier_user_texts = [messages[i].text for i in users[:-1]]
        turn = messages[users[-1] + 1 :] if users else messages
        self.calls: list[ToolCall] = [c for m in turn if m.role == "assistant" for c in m.tool_calls]
        self.results = _results(turn)
        self.all_results = _results(messages)
        self._called = {call_key(c.name, c.arguments) for c in self.calls}
        self.key = hashlib.sha256(f"{self.system}\x00{self.first_user_text}".encode()).hexdigest()

    @property
    def customer_id(self) -> str | None:
        """From the current message, else the latest earlier one that names a customer."""
        for text in [self.user_text, *reversed(self._earlier_user_texts)]:
            found = customer_id_in(text or "")
            if found:
                return found
        return None

    def offers(self, name: str) -> bool:
        return name in self.tools

    def called(self, step: Step) -> bool:
        return step.key in self._called

    def result(self, name: str, arguments: dict[str, Any] | None) -> ToolResult | None:
        """The latest result of exactly this call in the current turn."""
        if arguments is None:
            return None
        key = call_key(name, arguments)
        found = [r for r in self.results if call_key(r.call.name, r.call.arguments) == key]
        return found[-1] if found else None

    def args_for(self, name: str, **candidates: Any) -> dict[str, Any] | None:
        """The arguments for `name` that its input schema takes; None when it is not offered or a
        required argument cannot be filled."""
        tool = self.tools.get(name)
        if tool is None:
            return None
        schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
        props = schema.get("properties")
        args: dict[str, Any] = {}
        for key, value in candidates.items():
            if value is None:
                continue
            if isinstance(props, dict):
                if key not in props:
                    continue
                value = _fit(value, props[key])
                if value is _DROP:
                    continue
            args[key] = value
        required = schema.get("required")
        if isinstance(required, list) and any(r not in args for r in required if isinstance(r, str)):
            return None
        return args

    def step(self, name: str, **candidates: Any) -> Step | None:
        args = self.args_for(name, **candidates)
        return Step(name, args) if args is not None else None

    def property_schema(self, tool: str, prop: str) -> Any:
        spec = self.tools.get(tool)
        props = spec.input_schema.get("properties") if spec and isinstance(spec.input_schema, dict) else None
        return props.get(prop) if isinstance(props, dict) else None

    def has_property(self, tool: str, prop: str) -> bool:
        spec = self.tools.get(tool)
        props = spec.input_schema.get("properties") if spec and isinstance(spec.input_schema, dict) else None
        return isinstance(props, dict) and prop in props

    def delegates(self) -> list[ToolSpec]:
        """Tools that are other agents: a single string argument named `request`."""
        out = []
        for tool in self.tools.values():
            props = tool.input_schema.get("properties") if isinstance(tool.input_schema, dict) else None
            if isinstance(props, dict) and set(props) == {"request"}:
                out.append(tool)
        return out

    def delegate(self, *words: str) -> str | None:
        """The sub-agent tool whose name (else description) mentions one of `words`."""
        agents = self.delegates()
        for where in ("name", "description"):
            for tool in agents:
                text = (tool.name if where == "name" else tool.description or "").lower()
                if any(word in text for word in words):
                    return tool.name
        return None
