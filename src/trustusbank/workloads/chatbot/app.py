"""The chatbot: a customer chat page, and the A2A proxy that page (and `trustusbank ask`) talks through.

As in the seed, the chatbot is dumb: it renders a conversation and forwards every
message to one agent (support-bot). It holds no model and no tools; what it adds
is its own identity on the wire, which is why the page never calls an agent
directly. The page is one static file with a strict Content-Security-Policy
(its inline script and style are allowed by hash), and it renders every
customer and agent string as text.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib.resources import files

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from trustusbank.env import CHATBOT_AGENT, CHATBOT_AGENTS, CHATBOT_UPSTREAM, SettingError
from trustusbank.http_server import client_limits
from trustusbank.workloads.chatbot.names import DEFAULT_AGENT, parse_agent
from trustusbank.workloads.chatbot.proxy import UPSTREAM_TIMEOUT, A2AProxy, AgentsUrl, default_agents_url
from trustusbank.workloads.errors import WorkloadConfigError


def _inline_hashes(page: str, tag: str) -> list[str]:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks]


def page_headers(page: str) -> dict[str, str]:
    """A CSP that allows exactly the page's own inline script and style, and calls to this origin."""
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(_inline_hashes(page, 'script'))}",
            f"style-src {' '.join(_inline_hashes(page, 'style'))}",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-cache",
    }


def create_app(
    *,
    agents_url: AgentsUrl | None = None,
    http: httpx.AsyncClient | None = None,
    agent: str = DEFAULT_AGENT,
    agents: Iterable[str] = (),
) -> Starlette:
    """The chatbot app. `agents_url(namespace, agent)` gives an agent's base URL (default: its
    Service in the cluster); `http` is the upstream client (default: one that honours ALL_PROXY,
    closed with the app). `agent` is the `<namespace>/<name>` the page talks to; the proxy
    reaches it and the `agents` listed (`<namespace>/<name>` each), nothing else."""
    namespace, name = parse_agent(agent)
    reachable = {(namespace, name), *(parse_agent(ref) for ref in agents)}
    owned = http is None
    client = http or httpx.AsyncClient(
        trust_env=True, timeout=UPSTREAM_TIMEOUT, follow_redirects=False, limits=client_limits()
    )
    proxy = A2AProxy(agents_url or default_agents_url, client, reachable)
    page = files("trustusbank.workloads.chatbot").joinpath("page.html").read_text(encoding="utf-8")
    headers = page_headers(page)
    config = {"agent": f"{namespace}/{name}", "endpoint": f"api/a2a/{namespace}/{name}/"}

    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    async def app_config(_: Request) -> JSONResponse:
        return JSONResponse(config, headers={"cache-control": "no-store"})

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "agent": config["agent"]})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                await client.aclose()

    methods = ["GET", "POST"]
    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/api/config", app_config, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/api/a2a/{namespace}/{agent}", proxy.handle, methods=methods),
            Route("/api/a2a/{namespace}/{agent}/{rest:path}", proxy.handle, methods=methods),
        ],
        lifespan=lifespan,
    )


def upstream_from_template(template: str) -> AgentsUrl:
    """An `agents_url` from a URL template with `{namespace}` and `{agent}`."""
    if not template.startswith(("http://", "https://")):
        raise SettingError(f"{CHATBOT_UPSTREAM.name} must be an http(s) URL, got {template!r}")
    if "{namespace}" not in template or "{agent}" not in template:
        raise SettingError(
            f"{CHATBOT_UPSTREAM.name} must contain {{namespace}} and {{agent}}, got {template!r}"
        )
    return lambda namespace, agent: template.replace("{namespace}", namespace).replace("{agent}", agent)


def create_app_from_env() -> Starlette:
    """The app `trustusbank serve chatbot` runs, configured from the pod's environment."""
    try:
        # On a cluster with kagent, e.g. http://kagent-controller.kagent:8083/api/a2a/{namespace}/{agent}/
        template = CHATBOT_UPSTREAM.read()
        agent = CHATBOT_AGENT.read()
        return create_app(
            agents_url=upstream_from_template(template) if template is not None else None,
            agent=agent if agent is not None else DEFAULT_AGENT,
            agents=CHATBOT_AGENTS.read() or (),
        )
    except ValueError as exc:
        raise WorkloadConfigError(str(exc)) from exc
