"""The agent process: its A2A app, built from an AgentSpec, a model and the mesh's view of callers.

Routes: the agent card (`/.well-known/agent-card.json`, public), A2A JSON-RPC at `/`
(SendMessage, SendStreamingMessage, GetTask, ...; v0.3 `message/send` too), guarded
by the AccessPolicies; `/healthz` and `/metrics`. `app_from_env` is the container
entry point: the spec comes from `TRUSTUSBANK_AGENT_SPEC` (JSON, or a path to a JSON
file, as kagent mounts its config), the sign-in provider whose ID tokens it accepts from
`TRUSTUSBANK_AGENT_USER_TOKENS`, and a model or provider file that cannot be used stops
start-up with the reason rather than failing every request later.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from trustusbank import __version__
from trustusbank.agents.a2a.access_guard import AccessGuard, access_log_path
from trustusbank.agents.a2a.callers import CallerResolver, no_callers, topology_resolver
from trustusbank.agents.a2a.card import URL_EXTRA, agent_card
from trustusbank.agents.a2a.delegation import AgentCaller
from trustusbank.agents.a2a.executor import LoopExecutor
from trustusbank.agents.a2a.loop import AgentLoop
from trustusbank.agents.a2a.mcp_tools import McpToolbox
from trustusbank.agents.a2a.metrics import AgentMetrics
from trustusbank.agents.a2a.sessions import MAX_SESSIONS, MAX_TURNS, SessionStore
from trustusbank.agents.a2a.task_store import MAX_FINISHED, BoundedTaskStore
from trustusbank.agents.a2a.user_tokens import TrustedProvider
from trustusbank.agents.a2a.user_tokens import from_env as user_tokens_from_env
from trustusbank.agents.model.types import ModelClient
from trustusbank.env import AGENT_SPEC, AGENT_URL, TOPOLOGY, TRACES_DIR, SettingError
from trustusbank.manifests.kagent.spec import AgentSpec
from trustusbank.paths import state_dir
from trustusbank.telemetry.tracing import setup_tracing

RPC_PATH = "/"

log = logging.getLogger(__name__)


def create_app(
    spec: AgentSpec,
    model: ModelClient,
    *,
    caller_of: CallerResolver | None = None,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    user_tokens: TrustedProvider | None = None,
    max_finished_tasks: int = MAX_FINISHED,
    max_sessions: int = MAX_SESSIONS,
    max_turns: int = MAX_TURNS,
) -> Starlette:
    registry = registry if registry is not None else CollectorRegistry()
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    tracer = provider.get_tracer("trustusbank.agents.a2a", __version__)
    metrics = AgentMetrics(spec, registry)
    toolbox = McpToolbox(spec.mcp_servers)
    loop = AgentLoop(
        spec,
        model,
        toolbox=toolbox,
        agents=AgentCaller(timeout=spec.step_timeout_seconds),
        sessions=SessionStore(max_sessions, max_turns, metrics.session_dropped),
        tracer=tracer,
        metrics=metrics,
    )
    card = agent_card(spec)
    handler = DefaultRequestHandler(
        agent_executor=LoopExecutor(loop, metrics),
        task_store=BoundedTaskStore(max_finished_tasks, metrics.task_dropped),
        agent_card=card,
    )
    if spec.access_enforced and caller_of is None:
        log.warning("%s: AccessPolicies apply but no caller resolver is set: every call is denied", spec.ref)
    guard = AccessGuard(spec, caller_of, metrics, access_log_path(spec), user_tokens)
    rpc: list[BaseRoute] = [
        Route(route.path, guard.protect(route.endpoint), methods=["POST"])
        for route in create_jsonrpc_routes(handler, RPC_PATH, enable_v0_3_compat=True)
    ]

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "agent": spec.ref})

    async def metrics_endpoint(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await handler.aclose()
            await toolbox.aclose()
            await model.aclose()
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                flush()

    routes: list[BaseRoute] = [
        *create_agent_card_routes(card),
        *rpc,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def spec_from_env() -> AgentSpec:
    """The AgentSpec in `TRUSTUSBANK_AGENT_SPEC` (JSON, or a JSON file path); ValueError says what is off."""
    raw = AGENT_SPEC.read()
    if raw is None:
        raise SettingError(
            f"{AGENT_SPEC.name} is not set: it must hold the agent's spec (AgentSpec JSON, or a file path)"
        )
    if not raw.startswith("{"):
        try:
            raw = Path(raw).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingError(f"{AGENT_SPEC.name}: cannot read the spec file {raw}: {exc}") from exc
    try:
        spec = AgentSpec.from_json(raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SettingError(
            f"{AGENT_SPEC.name} is not a valid agent spec: {type(exc).__name__}: {exc}"
        ) from exc
    url = AGENT_URL.read()
    if url:
        spec = dataclasses.replace(spec, extra={**spec.extra, URL_EXTRA: url})
    return spec


def traces_path(spec: AgentSpec) -> Path:
    configured = TRACES_DIR.read()
    directory = configured if configured is not None else state_dir() / "traces"
    return directory / f"agent-{spec.namespace}-{spec.name}.jsonl"


def app_from_env() -> Starlette:
    """The container entry point; raises ValueError (bad spec) or ModelConfigError (unusable model)."""
    from trustusbank.agents.model.factory import client_for

    spec = spec_from_env()
    model = client_for(spec.model)
    topology = TOPOLOGY.read()
    caller_of = topology_resolver(topology) if topology is not None else no_callers
    if spec.access_enforced and topology is None:
        log.warning(
            "%s: AccessPolicies apply but %s is not set: every call is denied", spec.ref, TOPOLOGY.name
        )
    user_tokens = user_tokens_from_env()
    registry = CollectorRegistry()
    provider = setup_tracing(spec.name, traces_path(spec), {"service.namespace": spec.namespace}, registry)
    return create_app(
        spec, model, caller_of=caller_of, tracer_provider=provider, registry=registry, user_tokens=user_tokens
    )
