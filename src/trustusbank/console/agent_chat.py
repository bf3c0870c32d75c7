"""A person's message to an agent from the console: one A2A SendMessage on their behalf.

kagent's UI sends a user's message to an agent with the user's token, and the agent's policy
decides on that user's groups. The console does the same: the front door hands it the person's
ID token (`Authorization: Bearer`), and the message goes with that token, with the a2a-sdk
client, to the agent's pod address, straight in as the card is fetched (`agents.card_url`).
The card advertises the agent's Service, which only pods resolve, so requests go to the pod
address the card was read from. The agent checks the token itself; its answer, or its refusal
with the AccessPolicy that refused, is what the page shows. Nothing here decides who may call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
from a2a.helpers import get_message_text
from a2a.types import a2a_pb2 as a2a

from trustusbank.agents.a2a.delegation import task_outcome
from trustusbank.console.agents import CARD_PATH, Agent, card_url

SEND_TIMEOUT = 120.0  # an agent's run: its model and its tools, each with timeouts of their own
MAX_MESSAGE = 4000  # characters a person may send at once


@dataclass(frozen=True)
class Exchange:
    """What came back: the agent's answer, or why there is none."""

    asked: str
    answered: bool
    text: str  # the answer, or what went wrong
    context_id: str = ""  # the conversation, to continue it and to find its session
    status: int | None = None  # the HTTP status of a refusal
    policy: str | None = None  # the AccessPolicy the agent named in refusing


def rpc_url(agent: Agent) -> str:
    """Where the agent's A2A JSON-RPC endpoint is, at its pod (`/`, beside its card)."""
    assert agent.pod is not None
    return card_url(agent.pod, agent.spec).removesuffix(CARD_PATH) + "/"


def _refusal(asked: str, exc: A2AClientError, context_id: str) -> Exchange:
    cause = exc.__cause__
    if not isinstance(cause, httpx.HTTPStatusError):
        return Exchange(asked, False, f"the agent could not be reached: {exc}", context_id)
    response = cause.response
    try:
        error = response.json()["error"]
        message, data = str(error["message"]), error.get("data") or {}
    except (ValueError, KeyError, TypeError, httpx.ResponseNotRead):
        return Exchange(asked, False, f"HTTP {response.status_code}", context_id, response.status_code)
    policy = data.get("policy") if isinstance(data, dict) else None
    return Exchange(
        asked, False, message, context_id, response.status_code, policy if isinstance(policy, str) else None
    )


async def send(agent: Agent, text: str, authorization: str | None, context_id: str = "") -> Exchange:
    """Send `text` to `agent` as the person `authorization` (their `Bearer <ID token>`) names."""
    if agent.pod is None:
        return Exchange(text, False, "no pod runs this agent", context_id)
    url = rpc_url(agent)
    headers = {"Authorization": authorization} if authorization else {}
    message = a2a.Message(role=a2a.Role.ROLE_USER, message_id=uuid.uuid4().hex, context_id=context_id)
    message.parts.append(a2a.Part(text=text))
    async with httpx.AsyncClient(trust_env=False, timeout=SEND_TIMEOUT, headers=headers) as http:
        try:
            card = await A2ACardResolver(http, url).get_agent_card()
            for interface in card.supported_interfaces:
                interface.url = url
            client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
            exchange: Exchange | None = None
            async for event in client.send_message(a2a.SendMessageRequest(message=message)):
                if event.HasField("task"):
                    outcome = task_outcome(event.task, agent.ref)
                    exchange = Exchange(text, not outcome.is_error, outcome.text, event.task.context_id)
                elif event.HasField("message"):
                    said = event.message
                    exchange = Exchange(text, True, get_message_text(said), said.context_id or context_id)
        except A2AClientError as exc:
            return _refusal(text, exc, context_id)
        except (httpx.HTTPError, ValueError) as exc:
            why = f"the agent could not be reached: {type(exc).__name__}: {exc}"
            return Exchange(text, False, why, context_id)
    return exchange or Exchange(text, False, "the agent sent no answer", context_id)
