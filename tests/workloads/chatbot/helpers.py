"""A tiny real A2A agent (a2a-sdk server) and the chatbot in front of it, on 127.0.0.1.

Each server runs under uvicorn in its own thread, so both sync tests (CliRunner,
whose command calls asyncio.run) and async tests can talk to them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from a2a.helpers.proto_helpers import (
    new_data_part,
    new_task_from_user_message,
    new_text_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.serving import Served
from trustusbank.workloads.chatbot.app import create_app

NS = "trustusbank-bank-agents"
DENY_MESSAGE = (
    "AccessPolicy trustusbank-bank-agents/triage-only denies "
    "cluster.local/ns/trustusbank-bank-frontend/sa/chatbot"
)

# What support-bot's answer to the demo prompt looks like: tools, a hand-off, a denied call.
CHAIN: list[dict[str, Any]] = [
    {
        "type": "tool",
        "server": "account-mcp",
        "name": "get_balance",
        "arguments": {"customer_id": "12345"},
        "result": {"balance": 4287.55, "currency": "GBP"},
        "is_error": False,
        "duration_ms": 4,
    },
    {
        "type": "agent",
        "server": "trustusbank-bank-agents",
        "name": "fraud-bot",
        "arguments": {"message": "check 12345"},
        "result": "risk 82",
        "is_error": False,
        "duration_ms": 40,
        "url": "http://fraud-bot.trustusbank-bank-agents.svc.cluster.local:8080/",
        "steps": [
            {
                "type": "tool",
                "server": "transaction-mcp",
                "name": "flag_suspicious",
                "arguments": {"transaction_id": "t-9"},
                "result": "403: tool not allowed for fraud-bot [bold]x[/bold]",
                "is_error": True,
                "duration_ms": 2,
            }
        ],
    },
]


@dataclass
class AgentLog:
    """What the test agent saw: headers of each send, turns per conversation."""

    headers: list[dict[str, str]] = field(default_factory=list)
    turns: dict[str, int] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)  # requests to anything but A2A
    gate: threading.Event = field(default_factory=threading.Event)


class EchoExecutor(AgentExecutor):
    """Answers "turn N: you said ..." with a "reply" and a "tool-calls" artifact.

    "fail ..." ends the task failed; "gate" reports working, then waits for the test
    to release it (proving the events before it arrived while the task still ran).
    """

    def __init__(self, log: AgentLog) -> None:
        self.log = log

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        self.log.headers.append(dict(context.call_context.state.get("headers", {})))
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        text = context.get_user_input()
        turn = self.log.turns[task.context_id] = self.log.turns.get(task.context_id, 0) + 1
        if text.startswith("fail"):
            await updater.failed(
                new_text_message("the card service is unavailable", task.context_id, task.id)
            )
            return
        await updater.start_work()
        if text == "gate":
            released = await asyncio.to_thread(self.log.gate.wait, 10)
            text = f"gate released={released}"
        await updater.add_artifact([new_text_part(f"turn {turn}: you said {text}")], name="reply")
        await updater.add_artifact([new_data_part({"steps": CHAIN})], name="tool-calls")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def agent_card(name: str) -> AgentCard:
    in_cluster = f"http://{name}.{NS}.svc.cluster.local:8080"
    return AgentCard(
        name=name,
        description="test agent",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=f"{in_cluster}/", protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(
                url=f"{name}.{NS}.svc.cluster.local:9090", protocol_binding="GRPC", protocol_version="1.0"
            ),
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text"],
        default_output_modes=["text"],
        skills=[AgentSkill(id="answer", name="answer", description="answers", tags=["test"])],
    )


def echo_agent(log: AgentLog, name: str = "support-bot") -> Starlette:
    card = agent_card(name)
    handler = DefaultRequestHandler(EchoExecutor(log), InMemoryTaskStore(), card)

    async def other(request: Request) -> JSONResponse:
        log.other.append(f"{request.method} {request.url.path}")
        return JSONResponse({"path": request.url.path})

    return Starlette(
        routes=[
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, "/"),
            Route("/{rest:path}", other, methods=["GET", "POST"]),  # what a proxy must not reach
        ]
    )


def denying_agent(name: str = "fraud-bot") -> Starlette:
    """An agent whose AccessPolicy refuses every call: the card is public, sends are 403."""
    card = agent_card(name)

    async def deny(_: Request) -> JSONResponse:
        return JSONResponse({"error": {"code": -32001, "message": DENY_MESSAGE}}, status_code=403)

    return Starlette(routes=[*create_agent_card_routes(card), Route("/", deny, methods=["POST"])])


def start(app: ASGIApp) -> Served:
    return Served(lambda _: app).start()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


@dataclass
class Stack:
    chatbot: str
    agent: AgentLog
    down_url: str

    def proxy(self, agent: str = "support-bot", namespace: str = NS) -> str:
        return f"{self.chatbot}/api/a2a/{namespace}/{agent}/"


def run_stack() -> Iterator[Stack]:
    """support-bot answers, fraud-bot refuses, gone-bot is down; the chatbot fronts them all, and
    reaches any other name at the address where nothing listens (as gone-bot)."""
    log = AgentLog()
    support, fraud = start(echo_agent(log)), start(denying_agent())
    down = closed_port_url()
    routes = {"support-bot": support.url + "/", "fraud-bot": fraud.url + "/"}
    chatbot = start(
        create_app(
            agents_url=lambda namespace, agent: routes.get(agent, down),
            agents=[f"{NS}/fraud-bot", f"{NS}/gone-bot"],
        )
    )
    try:
        yield Stack(chatbot.url, log, down)
    finally:
        log.gate.set()
        for server in (chatbot, support, fraud):
            server.stop()
