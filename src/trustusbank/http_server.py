"""The one uvicorn configuration every server of ours runs with.

uvicorn trusts `X-Forwarded-For`/`X-Forwarded-Proto` from 127.0.0.1 by default
(`proxy_headers=True`, `forwarded_allow_ips="127.0.0.1,::1"`, or `$FORWARDED_ALLOW_IPS`)
and then reports the header's address as `request.client`. Every pod here listens on
a loopback address and several decide on the peer's address (an agent's AccessPolicy,
the waypoint's tunnel lookup), so that default would let any local caller name itself
someone else in a header. No component takes identity from a header: the peer is the
socket's peer, always.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    import httpx

# How long a server keeps an idle keep-alive connection (uvicorn's default, said once). A client that
# pools connections must give them up sooner: one it reuses just as the server closes it fails with
# "server disconnected without sending a response", though the server never saw the request.
KEEP_ALIVE_SECONDS = 5
CLIENT_KEEP_ALIVE_SECONDS = KEEP_ALIVE_SECONDS - 1
# A long-lived client's pool: httpx's default sizes, idle connections given up before our servers
# drop them (httpx keeps them 5 s, as long as the server, and then loses the odd request to the
# race). The arguments of `httpx.Limits` and of the MCP SDK's `httpx2.Limits` alike.
CLIENT_POOL: dict[str, Any] = {
    "max_connections": 100,
    "max_keepalive_connections": 20,
    "keepalive_expiry": CLIENT_KEEP_ALIVE_SECONDS,
}


def client_limits() -> httpx.Limits:
    """`CLIENT_POOL` for an httpx client (the chatbot's to its agent, an agent's to its model)."""
    import httpx  # here: the servers that import this module need not load a client

    return httpx.Limits(**CLIENT_POOL)


def uvicorn_config(app: Callable[..., Awaitable[None]], **options: Any) -> uvicorn.Config:
    """`uvicorn.Config(app, **options)` with forwarded-header trust off, whatever `options` say.

    h11 and asyncio unless asked otherwise: every server behaves the same whether or not
    httptools or uvloop happen to be installed, and no process pays for trying to import them.
    """
    if options.pop("proxy_headers", False):
        raise ValueError("proxy_headers must stay off: the client address is the socket's peer")
    options.setdefault("http", "h11")
    options.setdefault("loop", "asyncio")
    options.setdefault("timeout_keep_alive", KEEP_ALIVE_SECONDS)
    return uvicorn.Config(app, proxy_headers=False, forwarded_allow_ips=[], **options)
