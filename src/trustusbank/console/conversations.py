"""Agent sessions, rebuilt from the agents' spans: what kagent's UI lists as sessions and tool calls.

An agent keeps its sessions in memory (`agents/a2a/sessions.py`), where no operator can
read them; what it writes down is one `invoke_agent` span per turn, tagged with the A2A
context id (`gen_ai.conversation.id`) and carrying the customer's message and the answer,
with an `execute_tool` span per tool call (arguments and result) beneath it. A session is
the turns that share a context id, in time order.

A hand-off to another agent is an `execute_tool` span of type `agent`; the sub-agent's own
`invoke_agent` continues the same trace (the caller sends `traceparent`), possibly through
a waypoint's spans, and keeps the same context id. So a turn whose ancestors reach a tool
call is nested under that call, not listed as a turn of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trustusbank.agents.a2a import spans as genai
from trustusbank.console.spanfiles import Span

MAX_DEPTH = 64  # parent chains longer than this are not followed (a loop in hostile data)


def message_text(attribute: Any) -> str | None:
    """The text of a `gen_ai.*.messages` attribute (the conventions' [{role, parts}] JSON)."""
    if not isinstance(attribute, str):
        return None
    try:
        messages = json.loads(attribute)
    except ValueError:
        return attribute
    texts = [
        str(part.get("content", ""))
        for message in (messages if isinstance(messages, list) else [])
        if isinstance(message, dict)
        for part in message.get("parts") or []
        if isinstance(part, dict) and part.get("type") == "text"
    ]
    return "\n".join(texts) if texts else None


@dataclass
class ToolCall:
    span: Span
    handoffs: list[Turn] = field(default_factory=list)  # the sub-agent's runs, for an agent tool

    @property
    def name(self) -> str:
        return str(self.span.attributes.get(genai.TOOL_NAME) or self.span.name.removeprefix("execute_tool "))

    @property
    def server(self) -> str:
        return str(self.span.attributes.get(genai.MCP_SERVER) or "")

    @property
    def is_agent(self) -> bool:
        return self.span.attributes.get(genai.TOOL_TYPE) == genai.TOOL_TYPE_AGENT

    @property
    def arguments(self) -> str:
        return str(self.span.attributes.get(genai.TOOL_ARGUMENTS) or "")

    @property
    def result(self) -> str:
        return str(self.span.attributes.get(genai.TOOL_RESULT) or "")

    @property
    def is_error(self) -> bool:
        return bool(self.span.attributes.get(genai.TOOL_IS_ERROR)) or self.span.failed


@dataclass
class Turn:
    """One run of one agent: the message it was given, its model and tool calls, its answer."""

    span: Span
    calls: list[ToolCall] = field(default_factory=list)
    model_calls: int = 0

    @property
    def agent(self) -> str:
        """`<namespace>/<name>`, as the span's resource names the agent."""
        ref = self.span.attributes.get(genai.AGENT_REF)
        return str(ref) if ref else f"{self.span.namespace}/{self.span.service}"

    @property
    def conversation(self) -> str:
        return str(self.span.attributes.get(genai.CONVERSATION_ID) or "")

    @property
    def user(self) -> str | None:
        return message_text(self.span.attributes.get(genai.INPUT_MESSAGES))

    @property
    def answer(self) -> str | None:
        return message_text(self.span.attributes.get(genai.OUTPUT_MESSAGES))

    @property
    def stop_reason(self) -> str:
        return str(self.span.attributes.get(genai.STOP_REASON) or "")


@dataclass
class Session:
    id: str
    turns: list[Turn] = field(default_factory=list)  # top-level turns, by time
    nested: list[Turn] = field(default_factory=list)  # turns run for another agent's tool call

    @property
    def start(self) -> float:
        return min(t.span.start for t in [*self.turns, *self.nested])

    @property
    def agents(self) -> set[str]:
        return {t.agent for t in [*self.turns, *self.nested]}

    def calls(self) -> list[ToolCall]:
        """Every tool call of the session, hand-offs' included, each once."""
        found = {call.span.span_id: call for turn in [*self.turns, *self.nested] for call in turn.calls}
        return sorted(found.values(), key=lambda c: c.span.start)

    def revealed(self) -> list[str]:
        """Every argument and result of the session's tool calls: what the masker learns PII from."""
        return [text for call in self.calls() for text in (call.arguments, call.result) if text]


def _caller_tool(span: Span, index: dict[str, Span]) -> Span | None:
    """The tool call this run was made for: the nearest `execute_tool` ancestor, if it was recorded."""
    parent = span.parent_id
    for _ in range(MAX_DEPTH):
        above = index.get(parent or "")
        if above is None or above.trace_id != span.trace_id:
            return None
        if above.operation == genai.EXECUTE_TOOL:
            return above
        if above.operation == genai.INVOKE_AGENT:
            return None
        parent = above.parent_id
    return None


def unresolved_parents(spans: Iterable[Span]) -> set[str]:
    """Trace ids of runs whose parent span is not among `spans`: read the other components' spans of
    those traces to learn whether the run was a hand-off (through a waypoint's spans)."""
    spans = list(spans)
    known = {s.span_id for s in spans}
    return {
        s.trace_id
        for s in spans
        if s.operation == genai.INVOKE_AGENT and s.parent_id and s.parent_id not in known
    }


def build_sessions(spans: Iterable[Span]) -> dict[str, Session]:
    """Sessions by context id, from agent spans (and any other spans that link them)."""
    spans = sorted(spans, key=lambda s: (s.start, s.end))
    index = {s.span_id: s for s in spans}
    turns = {s.span_id: Turn(s) for s in spans if s.operation == genai.INVOKE_AGENT}
    calls: dict[str, ToolCall] = {}
    for span in spans:
        owner = turns.get(span.parent_id or "")
        if owner is None:
            continue
        if span.operation == genai.EXECUTE_TOOL:
            calls[span.span_id] = ToolCall(span)
            owner.calls.append(calls[span.span_id])
        elif span.operation == genai.CHAT:
            owner.model_calls += 1
    sessions: dict[str, Session] = {}
    for turn in turns.values():
        session = sessions.setdefault(turn.conversation, Session(turn.conversation))
        tool = _caller_tool(turn.span, index)
        if tool is not None and tool.span_id in calls:
            calls[tool.span_id].handoffs.append(turn)
            session.nested.append(turn)
        else:
            session.turns.append(turn)
    return sessions
