"""http_server.py is the only way a server of ours is configured, and it never trusts forwarding headers."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette

from tests.paths import REPO
from trustusbank.http_server import CLIENT_KEEP_ALIVE_SECONDS, KEEP_ALIVE_SECONDS, uvicorn_config

SRC = REPO / "src" / "trustusbank"


def test_forwarded_header_trust_is_off_and_cannot_be_turned_on() -> None:
    config = uvicorn_config(Starlette(), log_level="warning")
    assert config.proxy_headers is False
    assert uvicorn_config(Starlette(), proxy_headers=False).proxy_headers is False
    with pytest.raises(ValueError, match="proxy_headers"):
        uvicorn_config(Starlette(), proxy_headers=True)


def test_no_server_is_configured_another_way() -> None:
    """A bare uvicorn.Config/uvicorn.run would bring back uvicorn's trust in X-Forwarded-For."""
    pattern = re.compile(r"uvicorn\.(Config|run)\b|from uvicorn import")
    offenders = [
        str(path.relative_to(SRC))
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "http_server.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_every_server_speaks_h11_on_asyncio_whatever_else_is_installed() -> None:
    config = uvicorn_config(Starlette(), log_level="warning")
    config.load()
    assert config.http_protocol_class.__name__ == "H11Protocol"
    assert config.loop == "asyncio"


def test_pooling_clients_give_up_idle_connections_before_servers_drop_them() -> None:
    """A waypoint reusing a connection the server is closing at that instant loses the request."""

    async def app(scope: object, receive: object, send: object) -> None: ...

    assert uvicorn_config(app).timeout_keep_alive == KEEP_ALIVE_SECONDS
    assert CLIENT_KEEP_ALIVE_SECONDS < KEEP_ALIVE_SECONDS


async def test_our_long_lived_clients_give_up_idle_connections_before_servers_drop_them() -> None:
    """httpx's default keeps an idle connection as long as our servers do (5 s): the chatbot's client
    to its agent and an agent's to its model each lost a request to that race in the soak, an agent's
    MCP client a tools/list (to the waypoint) in CI."""
    from starlette.routing import Route

    from trustusbank.agents.a2a.mcp_tools import _http_client
    from trustusbank.agents.model.anthropic_client import AnthropicClient
    from trustusbank.agents.model.openai_client import OpenAIChatClient
    from trustusbank.alerts.scrape import Scraper
    from trustusbank.manifests.kagent.spec import McpServerSpec
    from trustusbank.promql.series import SeriesStore
    from trustusbank.workloads.chatbot.app import create_app

    chatbot = create_app()
    relay = next(r.endpoint for r in chatbot.routes if isinstance(r, Route) and "/api/a2a/" in r.path)
    clients = {
        "chatbot → agent": relay.__self__.http,  # type: ignore[attr-defined]
        "agent → model (openai)": OpenAIChatClient(model="m", api_key=None)._http,
        "agent → model (anthropic)": AnthropicClient(model="m", api_key="k")._http,
        "alert evaluator → scrape targets": Scraper(SeriesStore(), set())._client,
        "agent → MCP servers (through the waypoint)": _http_client(McpServerSpec("account-mcp", "http://x")),
    }
    for name, client in clients.items():
        expiry = client._transport._pool._keepalive_expiry  # type: ignore[attr-defined]
        assert expiry == CLIENT_KEEP_ALIVE_SECONDS, name
        await client.aclose()
