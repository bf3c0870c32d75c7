"""What the runtime tests share: servers on 127.0.0.1 in threads, test models, an A2A client."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from a2a.client import ClientCallContext, ClientConfig, create_client
from a2a.helpers import get_artifact_text, get_data_parts, get_message_text
from a2a.types import a2a_pb2 as a2a
from joserfc.jwk import KeySet, RSAKey
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.serving import Served as Served
from tests.serving import read_json_body
from tests.serving import served as served
from trustusbank.agents.a2a.callers import CallerResolver
from trustusbank.agents.a2a.server import create_app
from trustusbank.agents.a2a.sessions import MAX_SESSIONS, MAX_TURNS
from trustusbank.agents.a2a.task_store import MAX_FINISHED
from trustusbank.agents.a2a.user_tokens import TrustedProvider, provider_document
from trustusbank.agents.model.types import (
    Message,
    ModelError,
    ModelReply,
    ModelRequest,
    ToolCall,
    Usage,
)
from trustusbank.console.signin.chain import CLIENT_ID
from trustusbank.console.signin.provider import Grant, Provider
from trustusbank.console.signin.users import User
from trustusbank.manifests.kagent.spec import AgentSpec, McpServerSpec, ModelSpec, SubAgentSpec

# --- servers ------------------------------------------------------------------------------------


@dataclass
class Gate:
    """In front of an MCP server: records request headers and refuses chosen tools as a gateway would."""

    app: ASGIApp
    deny_tools: set[str] = field(default_factory=set)
    stall_tools: set[str] = field(default_factory=set)  # held until `release` is set
    release: threading.Event = field(default_factory=threading.Event)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.headers.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        body, parsed = await read_json_body(receive)
        called = parsed.get("params", {}).get("name") if parsed.get("method") == "tools/call" else None
        if called in self.stall_tools:
            await asyncio.to_thread(self.release.wait, 30)
        if called in self.deny_tools:
            tool = parsed["params"]["name"]
            error = {"code": -32001, "message": f"tools/call {tool} is not allowed for this caller"}
            payload = json.dumps({"jsonrpc": "2.0", "id": parsed.get("id"), "error": error}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


# --- models -------------------------------------------------------------------------------------

Plan = Callable[[ModelRequest], ModelReply]


class PlanModel:
    """A ModelClient whose next move is a function of the request, recording every request."""

    provider = "test-provider"

    def __init__(self, plan: Plan, model: str = "plan-model-1") -> None:
        self.plan = plan
        self.model = model
        self.requests: list[ModelRequest] = []
        self.closed = False

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return self.plan(request)

    async def aclose(self) -> None:
        self.closed = True


class FailingModel(PlanModel):
    def __init__(self, message: str) -> None:
        super().__init__(lambda _: answer("unused"))
        self.message = message

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        raise ModelError(self.message)


class StuckModel(PlanModel):
    """Never answers: what a hung provider looks like."""

    def __init__(self) -> None:
        super().__init__(lambda _: answer("unused"))

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


_ids = iter(range(1, 1_000_000))


def call(name: str, **arguments: Any) -> ModelReply:
    return ModelReply(
        text="",
        tool_calls=(ToolCall(f"call-{next(_ids)}", name, arguments),),
        model="plan-model-1-0001",
        stop_reason="tool_use",
        usage=Usage(10, 5),
        response_id=f"resp-{next(_ids)}",
    )


def answer(text: str) -> ModelReply:
    return ModelReply(
        text=text,
        tool_calls=(),
        model="plan-model-1-0001",
        stop_reason="end_turn",
        usage=Usage(20, 7),
        response_id=f"resp-{next(_ids)}",
    )


def this_turn(request: ModelRequest) -> list[Message]:
    """The messages after the latest user message: what the run has done so far."""
    last_user = max(i for i, m in enumerate(request.messages) if m.role == "user")
    return list(request.messages[last_user:])


def results(request: ModelRequest) -> dict[str, Message]:
    """This turn's tool results, by tool name."""
    return {m.tool_name or "": m for m in this_turn(request) if m.role == "tool"}


def offered(request: ModelRequest) -> set[str]:
    return {t.name for t in request.tools}


# --- agents -------------------------------------------------------------------------------------


def agent_spec(name: str = "support-bot", **changes: Any) -> AgentSpec:
    spec = AgentSpec(
        name=name,
        namespace="trustusbank-bank-agents",
        description=f"{name}, under test",
        system_message="You are a test agent.",
        model=ModelSpec(config="trustusbank-bank-agents/test", provider="openai", model="plan-model-1"),
    )
    return replace(spec, **changes)


def mcp(name: str, url: str, *tools: str, timeout: float = 10.0) -> McpServerSpec:
    return McpServerSpec(name=name, url=f"{url}/mcp", tool_names=tools, timeout_seconds=timeout)


def sub_agent(name: str, url: str, description: str = "") -> SubAgentSpec:
    return SubAgentSpec(
        name=name, namespace="trustusbank-bank-agents", url=f"{url}/", description=description
    )


@dataclass
class AgentUnderTest:
    served: Served
    spec: AgentSpec
    model: PlanModel
    spans: InMemorySpanExporter
    registry: CollectorRegistry

    @property
    def url(self) -> str:
        return self.served.url

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())


@contextmanager
def running_agent(
    spec: AgentSpec,
    model: PlanModel,
    caller_of: CallerResolver | None = None,
    user_tokens: TrustedProvider | None = None,
    max_finished_tasks: int = MAX_FINISHED,
    max_sessions: int = MAX_SESSIONS,
    max_turns: int = MAX_TURNS,
) -> Iterator[AgentUnderTest]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    holder: dict[str, AgentSpec] = {}

    def build(url: str) -> ASGIApp:
        holder["spec"] = replace(spec, extra={**spec.extra, "url": f"{url}/"})
        return create_app(
            holder["spec"],
            model,
            caller_of=caller_of,
            tracer_provider=provider,
            registry=registry,
            user_tokens=user_tokens,
            max_finished_tasks=max_finished_tasks,
            max_sessions=max_sessions,
            max_turns=max_turns,
        )

    with served(build) as server:
        yield AgentUnderTest(server, holder["spec"], model, exporter, registry)


# --- A2A client ---------------------------------------------------------------------------------


async def ask(
    url: str,
    text: str,
    *,
    context_id: str = "",
    streaming: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[a2a.Task, list[a2a.StreamResponse]]:
    """Send one message with the a2a-sdk client; the final task, and every event received."""
    client = await create_client(f"{url}/", client_config=ClientConfig(streaming=streaming))
    message = a2a.Message(
        role=a2a.Role.ROLE_USER,
        message_id=f"m-{next(_ids)}",
        context_id=context_id,
        parts=[a2a.Part(text=text)],
    )
    events: list[a2a.StreamResponse] = []
    context = ClientCallContext(service_parameters=headers) if headers else None
    try:
        async for event in client.send_message(a2a.SendMessageRequest(message=message), context=context):
            events.append(event)
        task_id = next(
            (e.task.id for e in events if e.HasField("task")),
            next((e.status_update.task_id for e in events if e.HasField("status_update")), ""),
        )
        task = await client.get_task(a2a.GetTaskRequest(id=task_id))
    finally:
        await client.close()
    return task, events


def artifact(task: a2a.Task, name: str) -> a2a.Artifact:
    return next(a for a in task.artifacts if a.name == name)


def reply_text(task: a2a.Task) -> str:
    return get_artifact_text(artifact(task, "reply"))


def chain(task: a2a.Task) -> dict[str, Any]:
    (data,) = get_data_parts(artifact(task, "tool-calls").parts)
    assert isinstance(data, dict)
    return data


def status_text(task: a2a.Task) -> str:
    return get_message_text(task.status.message)


def spans_named(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


# --- a person's ID token ------------------------------------------------------------------------

ISSUER = "http://127.0.0.1:15556"


@dataclass
class Issuer:
    """The console's sign-in provider, minting ID tokens as it does at /token."""

    key: RSAKey
    issuer: str = ISSUER
    audience: str = CLIENT_ID
    offset: float = 0.0  # the provider's clock, moved by the test

    def token(self, user: User) -> str:
        provider = Provider(self.issuer, self.key, [], clock=lambda: time.time() + self.offset)
        grant = Grant(self.audience, "http://127.0.0.1/oauth2/callback", "c", "n", user, int(time.time()), 0)
        return provider.id_token(grant)

    def trusted(self) -> TrustedProvider:
        """What the agent is handed: the issuer, the console's client, the public JWKS."""
        public = KeySet([self.key]).as_dict(private=False)
        document = json.loads(json.dumps(provider_document(ISSUER, CLIENT_ID, public)))  # as in the file
        return TrustedProvider.from_document(document)
