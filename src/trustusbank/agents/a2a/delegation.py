"""Another agent as a tool: one A2A SendMessage per call, with the a2a-sdk client.

The card is read from the sub-agent's configured URL, but requests go to that URL
too, not to whatever address the card advertises: the Agent reference names a
Service, and the mesh's and the waypoint's policies are written for that Service.
The trace context travels as `traceparent`, so the sub-agent's invoke_agent span is
a child of our execute_tool span; the conversation's context_id travels too, so the
sub-agent keeps its own memory of the same conversation.

What comes back is the sub-agent's answer and its own tool-call chain (its
"tool-calls" artifact), so the chain shown to the user is the whole tree. A refusal
(HTTP 403 from an AccessPolicy) or a failed task is an error result for the model.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
from a2a.helpers import get_artifact_text, get_data_parts, get_message_text
from a2a.types import a2a_pb2 as a2a

from trustusbank.agents.a2a.mcp_tools import describe_error
from trustusbank.manifests.kagent.spec import SubAgentSpec
from trustusbank.telemetry.tracing import inject

REPLY_ARTIFACT = "reply"
TOOL_CALLS_ARTIFACT = "tool-calls"


@dataclass(frozen=True)
class DelegationOutcome:
    text: str
    is_error: bool
    steps: list[dict[str, Any]] = field(default_factory=list)


def _http_error_text(exc: BaseException) -> str:
    """The status and the JSON-RPC error message of a refused request, when there is one."""
    cause = exc.__cause__
    if not isinstance(cause, httpx.HTTPStatusError):
        return describe_error(exc)
    response = cause.response
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError, httpx.ResponseNotRead):
        message = response.reason_phrase
    return f"HTTP {response.status_code}: {message}"


def task_outcome(task: a2a.Task, ref: str) -> DelegationOutcome:
    reply = next((a for a in task.artifacts if a.name == REPLY_ARTIFACT), None)
    text = get_artifact_text(reply) if reply else get_message_text(task.status.message)
    steps: list[dict[str, Any]] = []
    for artifact in task.artifacts:
        if artifact.name == TOOL_CALLS_ARTIFACT:
            for data in get_data_parts(artifact.parts):
                if isinstance(data, dict) and isinstance(data.get("steps"), list):
                    steps.extend(data["steps"])
    state = task.status.state
    if state == a2a.TaskState.TASK_STATE_COMPLETED:
        return DelegationOutcome(text, False, steps)
    status = a2a.TaskState.Name(state).removeprefix("TASK_STATE_").lower()
    return DelegationOutcome(f"agent {ref} ended {status}: {text}".rstrip(": "), True, steps)


class AgentCaller:
    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._cards: dict[str, a2a.AgentCard] = {}

    async def _card(self, agent: SubAgentSpec, http: httpx.AsyncClient) -> a2a.AgentCard:
        key = f"{agent.namespace}/{agent.name}@{agent.url}"
        if key not in self._cards:
            card = await A2ACardResolver(http, agent.url).get_agent_card()
            for interface in card.supported_interfaces:
                interface.url = agent.url
            self._cards[key] = card
        return self._cards[key]

    async def call(self, agent: SubAgentSpec, request: str, context_id: str | None) -> DelegationOutcome:
        ref = f"{agent.namespace}/{agent.name}"
        message = a2a.Message(
            role=a2a.Role.ROLE_USER,
            message_id=uuid.uuid4().hex,
            context_id=context_id or "",
            parts=[a2a.Part(text=request)],
        )
        async with httpx.AsyncClient(trust_env=True, timeout=self.timeout, headers=inject()) as http:
            try:
                card = await self._card(agent, http)
                client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
                outcome: DelegationOutcome | None = None
                async for event in client.send_message(a2a.SendMessageRequest(message=message)):
                    if event.HasField("task"):
                        outcome = task_outcome(event.task, ref)
                    elif event.HasField("message"):
                        outcome = DelegationOutcome(get_message_text(event.message), False)
            except A2AClientError as exc:
                return DelegationOutcome(f"call to agent {ref} failed: {_http_error_text(exc)}", True)
            except Exception as exc:
                return DelegationOutcome(f"call to agent {ref} failed: {describe_error(exc)}", True)
        if outcome is None:
            return DelegationOutcome(f"agent {ref} sent no answer", True)
        return outcome


def request_text(arguments: dict[str, Any]) -> str | None:
    """The `request` argument of a delegation call, as the model gave it."""
    value = arguments.get("request")
    if isinstance(value, str) and value.strip():
        return value
    if value is not None and not isinstance(value, str):
        return json.dumps(value)
    return None
