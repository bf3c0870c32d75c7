"""Ask an agent a question the way the customer's page does: through the chatbot's A2A proxy.

The proxy's agent card names the proxy as the agent's address, so the a2a-sdk
client, once it has the card, keeps every call on the chatbot. The agent then
sees the chatbot's identity, and an AccessPolicy deny reaches the caller as the
403 the page would get. Failures become one sentence (`AskError`) naming what
to check.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientTimeoutError, AgentCardResolutionError
from a2a.helpers.proto_helpers import get_data_parts, get_text_parts
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, Task, TaskState
from a2a.utils.errors import A2AError

from trustusbank.errors import OperationError
from trustusbank.workloads.chatbot.names import parse_agent


@dataclass
class AskResult:
    reply: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    task_id: str | None = None
    context_id: str | None = None
    state: str = "completed"
    status_message: str = ""


class AskError(OperationError):
    """A failure to report in one sentence (with a hint where one helps)."""


KAGENT_TYPE = "kagent_type"


def _state_name(state: int) -> str:
    return str(TaskState.Name(state)).removeprefix("TASK_STATE_").lower()


def _whole_numbers(value: Any) -> Any:
    """A2A data parts travel as protobuf Values, where every number is a double: 30 comes back 30.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _steps(artifact_parts: list[Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for data in artifact_parts:
        if isinstance(data, dict) and isinstance(data.get("steps"), list):
            steps += [_whole_numbers(s) for s in data["steps"] if isinstance(s, dict)]
    return steps


def _kagent_steps(task: Task) -> list[dict[str, Any]]:
    """The calls kagent's own runtime reports: data parts in the history marked `kagent_type`
    `function_call` (name, args, id), their results `function_response` (matched by id)."""
    steps: dict[str, dict[str, Any]] = {}
    for message in task.history:
        for part in message.parts:
            if not part.HasField("data") or KAGENT_TYPE not in part.metadata:
                continue
            kind = part.metadata[KAGENT_TYPE]
            data = _whole_numbers(next(iter(get_data_parts([part])), None))
            if not isinstance(data, dict):
                continue
            key = str(data.get("id") or len(steps))
            if kind == "function_call":
                steps[key] = {"name": data.get("name"), "arguments": data.get("args", {}), "is_error": False}
            elif kind == "function_response" and key in steps:
                response = data.get("response")
                steps[key]["result"] = response
                steps[key]["is_error"] = isinstance(response, dict) and bool(response.get("error"))
    return list(steps.values())


def result_from_task(task: Task) -> AskResult:
    """Reply from the "reply" artifact (or a completed task's status message), chain from "tool-calls".

    A task from kagent's own runtime (on a cluster) names no artifact: its answer is the text of
    the unnamed artifact and its calls are in the history (`_kagent_steps`)."""
    named = any(a.name == "reply" for a in task.artifacts)
    reply = "\n".join(
        t for a in task.artifacts if a.name == ("reply" if named else "") for t in get_text_parts(a.parts)
    )
    status_message = "\n".join(get_text_parts(task.status.message.parts))
    steps = [s for a in task.artifacts if a.name == "tool-calls" for s in _steps(get_data_parts(a.parts))]
    if not named and not steps:
        steps = _kagent_steps(task)
    state = _state_name(task.status.state)
    return AskResult(
        reply=reply or (status_message if state == "completed" else ""),
        tool_calls=steps,
        task_id=task.id or None,
        context_id=task.context_id or None,
        state=state,
        status_message=status_message,
    )


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _body_message(response: httpx.Response) -> str:
    """The sentence an error body carries: ours ({"error": ...}), JSON-RPC's, or the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value:
                return value
    return json.dumps(body)[:500]


def _http_failure(exc: BaseException, chatbot: str, agent: str) -> AskError:
    """Turn what the a2a client raised into the sentence the user needs."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, httpx.HTTPError):
        cause = cause.__cause__
    if isinstance(cause, httpx.HTTPStatusError):
        response = cause.response
        message = _body_message(response)
        if response.status_code == 403:
            return AskError(f"{agent} refused the call (403): {message}")
        return AskError(f"the chatbot answered {response.status_code} for {agent}: {message}")
    if isinstance(cause, httpx.TransportError):
        return AskError(f"cannot reach the chatbot at {chatbot} ({cause}): is `trustusbank up` running?")
    return AskError(f"{agent}: {exc}")


async def ask(
    prompt: str, *, chatbot: str, agent: str, context_id: str | None = None, wait: float = 300.0
) -> AskResult:
    """Send `prompt` to `agent` (`<namespace>/<name>`) through the chatbot at `chatbot`.

    `wait` bounds how long the answer may take; `context_id` continues a conversation.
    Raises `AskError`; a task that ended other than completed is a result, not an error.
    """
    namespace, name = parse_agent(agent)
    base = f"{chatbot.rstrip('/')}/api/a2a/{namespace}/{name}/"
    message = Message(
        role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=prompt)], context_id=context_id
    )
    # The chatbot on this machine is reached directly; anything else the way the environment says.
    async with httpx.AsyncClient(
        trust_env=not _is_loopback(chatbot), timeout=httpx.Timeout(10.0, read=wait)
    ) as http:
        try:
            card = await A2ACardResolver(http, base).get_agent_card()
            client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
            async for event in client.send_message(SendMessageRequest(message=message)):
                if event.HasField("task"):
                    return result_from_task(event.task)
                if event.HasField("message"):
                    return AskResult(
                        reply="\n".join(get_text_parts(event.message.parts)),
                        task_id=event.message.task_id or None,
                        context_id=event.message.context_id or None,
                    )
        except A2AClientTimeoutError:
            raise AskError(f"{agent} did not answer within {wait:g} s") from None
        except AgentCardResolutionError as exc:
            if exc.status_code is None and not isinstance(exc.__cause__, httpx.HTTPError):
                raise AskError(f"{agent} sent an agent card that cannot be read: {exc}") from None
            raise _http_failure(exc, chatbot, agent) from None
        except A2AClientError as exc:
            raise _http_failure(exc, chatbot, agent) from None
        except A2AError as exc:  # a JSON-RPC error from the agent
            raise AskError(f"{agent} answered with an error: {exc}") from None
        except ValueError as exc:  # e.g. a card with no transport we can use
            raise AskError(f"cannot talk to {agent}: {exc}") from None
    raise AskError(f"{agent} sent no answer")
