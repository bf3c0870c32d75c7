"""One agent run: the model proposes tool calls, we execute them, until it answers.

Bounded on purpose: at most `max_steps` model calls and `step_timeout_seconds` per
model or tool call. Hitting a bound ends the run with an apology that says which
bound, never a hang; a model *error* is not an answer and propagates (the task
fails). Tools are executed one after the other in the order the model gave, so the
chain is reproducible and each call's span is a sibling under the run's span.

Every call is recorded twice, as a step of the "tool-calls" chain (for the person
asking) and as a GenAI span (for the evidence trail); both carry the arguments sent
and the result received, which is what shows a tool being abused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from trustusbank.agents.a2a import spans as attr
from trustusbank.agents.a2a.delegation import AgentCaller, DelegationOutcome, request_text
from trustusbank.agents.a2a.mcp_tools import McpTool, McpToolbox, ToolOutcome
from trustusbank.agents.a2a.metrics import AgentMetrics
from trustusbank.agents.a2a.sessions import SessionStore
from trustusbank.agents.model.types import (
    Message,
    ModelClient,
    ModelReply,
    ModelRequest,
    ToolCall,
    ToolSpec,
    Usage,
)
from trustusbank.manifests.kagent.spec import AgentSpec, SubAgentSpec

log = logging.getLogger(__name__)

StopReason = Literal["max_steps", "model_timeout", "tool_timeout"]
Progress = Callable[[str], Awaitable[None]]
Target = McpTool | SubAgentSpec

DELEGATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"request": {"type": "string"}},
    "required": ["request"],
}


@dataclass
class ToolStep:
    """One executed tool call, as the "tool-calls" artifact shows it."""

    type: Literal["tool", "agent"]
    server: str  # RemoteMCPServer name, or "<ns>/<name>" of the agent called
    name: str
    arguments: dict[str, Any]
    call_id: str
    url: str = ""
    result: str = ""
    is_error: bool = False
    duration_ms: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "server": self.server,
            "name": self.name,
            "arguments": self.arguments,
            "result": self.result,
            "is_error": self.is_error,
            "duration_ms": round(self.duration_ms, 2),
            "url": self.url,
            "call_id": self.call_id,
        }
        if self.type == "agent":
            data["steps"] = self.steps
        return data


@dataclass
class LoopResult:
    reply: str
    steps: list[ToolStep]
    model_calls: int
    usage: Usage
    stop_reason: StopReason | None = None
    stop_detail: str | None = None

    def chain(self) -> dict[str, Any]:
        """The "tool-calls" artifact's data."""
        return {
            "steps": [s.to_dict() for s in self.steps],
            "stop_reason": self.stop_reason,
            "stop_detail": self.stop_detail,
        }


def delegation_tool(agent: SubAgentSpec) -> ToolSpec:
    description = agent.description or f"Ask the agent {agent.namespace}/{agent.name} to handle a request."
    return ToolSpec(agent.tool_name, description, DELEGATION_SCHEMA)


class _Stopped(Exception):
    def __init__(self, reason: StopReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class AgentLoop:
    def __init__(
        self,
        spec: AgentSpec,
        model: ModelClient,
        *,
        toolbox: McpToolbox,
        agents: AgentCaller,
        sessions: SessionStore,
        tracer: Tracer,
        metrics: AgentMetrics,
    ) -> None:
        self.spec = spec
        self.model = model
        self.toolbox = toolbox
        self.agents = agents
        self.sessions = sessions
        self.tracer = tracer
        self.metrics = metrics

    async def run(
        self, text: str, context_id: str, *, parent: Context | None = None, progress: Progress | None = None
    ) -> LoopResult:
        """Answer one user message of the conversation `context_id`; raises ModelError if the model fails."""
        spec = self.spec
        with self.tracer.start_as_current_span(
            f"{attr.INVOKE_AGENT} {spec.name}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                attr.OPERATION: attr.INVOKE_AGENT,
                attr.AGENT_NAME: spec.name,
                attr.AGENT_DESCRIPTION: spec.description,
                attr.AGENT_REF: spec.ref,
                attr.CONVERSATION_ID: context_id,
                attr.PROVIDER: self.model.provider,
                attr.SYSTEM: self.model.provider,
                attr.REQUEST_MODEL: spec.model.model,
                attr.INPUT_MESSAGES: attr.text_message("user", text),
            },
        ) as span:
            result = await self._run(text, context_id, progress)
            finish = result.stop_reason or "stop"
            span.set_attribute(attr.OUTPUT_MESSAGES, attr.text_message("assistant", result.reply, finish))
            span.set_attribute(attr.INPUT_TOKENS, result.usage.input_tokens)
            span.set_attribute(attr.OUTPUT_TOKENS, result.usage.output_tokens)
            if result.stop_reason:
                span.set_attribute(attr.STOP_REASON, result.stop_reason)
                span.add_event(
                    "agent stopped", {"reason": result.stop_reason, "detail": result.stop_detail or ""}
                )
            return result

    async def _catalogue(self) -> tuple[tuple[ToolSpec, ...], dict[str, Target]]:
        targets: dict[str, Target] = {}
        specs: list[ToolSpec] = []
        for tool in await self.toolbox.tools():
            targets[tool.spec.name] = tool
            specs.append(tool.spec)
        for agent in self.spec.sub_agents:
            if agent.tool_name in targets:
                log.warning("agent %s/%s hidden by a tool of the same name", agent.namespace, agent.name)
                continue
            targets[agent.tool_name] = agent
            specs.append(delegation_tool(agent))
        return tuple(specs), targets

    async def _run(self, text: str, context_id: str, progress: Progress | None) -> LoopResult:
        spec = self.spec
        tools, targets = await self._catalogue()
        user = Message("user", text)
        turn: list[Message] = [user]
        history = self.sessions.history(context_id)
        steps: list[ToolStep] = []
        usage = Usage()
        calls = 0
        try:
            while True:
                if calls >= spec.max_steps:
                    raise _Stopped(
                        "max_steps",
                        f"I reached my limit of {spec.max_steps} model steps before I had an answer",
                    )
                request = ModelRequest(
                    model=spec.model.model,
                    system=spec.system_message,
                    messages=(*history, *turn),
                    tools=tools,
                    max_tokens=spec.model.max_tokens,
                    temperature=spec.model.temperature,
                )
                calls += 1
                reply = await self._chat(request)
                usage = Usage(
                    usage.input_tokens + reply.usage.input_tokens,
                    usage.output_tokens + reply.usage.output_tokens,
                )
                if not reply.tool_calls:
                    answer = reply.text or "(the model returned an empty answer)"
                    turn.append(Message("assistant", answer))
                    self.sessions.record(context_id, tuple(turn))
                    return LoopResult(answer, steps, calls, usage)
                if calls >= spec.max_steps:
                    continue  # no model call left to read the results: do not run the tools
                turn.append(Message("assistant", reply.text, tool_calls=reply.tool_calls))
                for call in reply.tool_calls:
                    step, timed_out = await self._execute(call, targets.get(call.name), context_id, progress)
                    steps.append(step)
                    if timed_out:
                        raise _Stopped("tool_timeout", step.result)
                    turn.append(
                        Message(
                            "tool",
                            step.result,
                            tool_call_id=call.id,
                            tool_name=call.name,
                            is_error=step.is_error,
                        )
                    )
        except _Stopped as stopped:
            answer = f"I'm sorry, I could not finish this request: {stopped.detail}."
            self.sessions.record(context_id, (user, Message("assistant", answer)))
            return LoopResult(answer, steps, calls, usage, stopped.reason, stopped.detail)

    async def _chat(self, request: ModelRequest) -> ModelReply:
        timeout = self.spec.step_timeout_seconds
        with self.tracer.start_as_current_span(
            f"{attr.CHAT} {request.model}",
            kind=SpanKind.CLIENT,
            attributes={
                attr.OPERATION: attr.CHAT,
                attr.PROVIDER: self.model.provider,
                attr.SYSTEM: self.model.provider,
                attr.REQUEST_MODEL: request.model,
                attr.REQUEST_MAX_TOKENS: request.max_tokens,
            },
        ) as span:
            started = time.perf_counter()
            try:
                reply: ModelReply | None = await asyncio.wait_for(self.model.complete(request), timeout)
            except TimeoutError:
                reply = None
                _fail(span, "timeout", f"no answer within {timeout:g}s")
            finally:
                self.metrics.model_call(time.perf_counter() - started)
            if reply is not None:
                span.set_attributes(
                    {
                        attr.RESPONSE_MODEL: reply.model,
                        attr.RESPONSE_ID: reply.response_id,
                        attr.FINISH_REASONS: (reply.stop_reason,),
                        attr.INPUT_TOKENS: reply.usage.input_tokens,
                        attr.OUTPUT_TOKENS: reply.usage.output_tokens,
                    }
                )
        if reply is None:
            raise _Stopped("model_timeout", f"the model did not answer within {timeout:g} seconds")
        return reply

    async def _execute(
        self, call: ToolCall, target: Target | None, context_id: str, progress: Progress | None
    ) -> tuple[ToolStep, bool]:
        """The executed step, and whether it timed out (which ends the run)."""
        if isinstance(target, SubAgentSpec):
            ref = f"{target.namespace}/{target.name}"
            step = ToolStep("agent", ref, call.name, dict(call.arguments), call.id, target.url)
            tool_type, server, note = attr.TOOL_TYPE_AGENT, ref, f"Asking agent {ref}"
        else:
            server = target.server.name if target else ""
            url = target.server.url if target else ""
            step = ToolStep("tool", server, call.name, dict(call.arguments), call.id, url)
            tool_type, note = attr.TOOL_TYPE_MCP, f"Calling {call.name} on {server or 'no server'}"
        if progress:
            await progress(note)
        with self.tracer.start_as_current_span(
            f"{attr.EXECUTE_TOOL} {call.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                attr.OPERATION: attr.EXECUTE_TOOL,
                attr.TOOL_NAME: call.name,
                attr.TOOL_CALL_ID: call.id,
                attr.TOOL_TYPE: tool_type,
                attr.TOOL_ARGUMENTS: attr.as_json(call.arguments),
                attr.MCP_SERVER: server,
                attr.URL_FULL: step.url,
            },
        ) as span:
            started = time.perf_counter()
            timed_out = False
            try:
                outcome = await asyncio.wait_for(
                    self._dispatch(call, target, context_id), self.spec.step_timeout_seconds
                )
            except TimeoutError:
                timed_out = True
                what = f"agent {server}" if tool_type == attr.TOOL_TYPE_AGENT else f"the tool {call.name}"
                outcome = ToolOutcome(
                    f"{what} did not answer within {self.spec.step_timeout_seconds:g} seconds", True
                )
            step.duration_ms = (time.perf_counter() - started) * 1000
            step.result, step.is_error = outcome.text, outcome.is_error
            if isinstance(outcome, DelegationOutcome):
                step.steps = outcome.steps
            span.set_attribute(attr.TOOL_RESULT, attr.truncate(outcome.text))
            span.set_attribute(attr.TOOL_IS_ERROR, outcome.is_error)
            if outcome.is_error:
                _fail(span, "timeout" if timed_out else "tool_error", outcome.text)
        self.metrics.tool_call(server or "-", call.name, step.is_error)
        return step, timed_out

    async def _dispatch(
        self, call: ToolCall, target: Target | None, context_id: str
    ) -> ToolOutcome | DelegationOutcome:
        if target is None:
            return ToolOutcome(f"there is no tool named {call.name!r}", True)
        if isinstance(target, McpTool):
            return await self.toolbox.call(target, dict(call.arguments))
        request = request_text(call.arguments)
        if request is None:
            return ToolOutcome(f"{call.name} needs a non-empty 'request' argument", True)
        return await self.agents.call(target, request, context_id)


def _fail(span: Span, error_type: str, description: str) -> None:
    span.set_attribute(attr.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, attr.truncate(description, 512)))
