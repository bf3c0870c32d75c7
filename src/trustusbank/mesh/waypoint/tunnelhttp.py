"""The waypoint's HTTP layer, reachable only through an HBONE tunnel: it has no listening socket.

Each tunnel gets a private `socket.socketpair()`: one end is piped to the HBONE
stream, the other is served by uvicorn's own HTTP/1.1 protocol (h11). That
protocol is told, when it is made, which tunnel it serves, and puts that key in
every request's scope (`scope["extensions"][TUNNEL]`). So the caller's identity
follows the tunnel the bytes came through, never an address, port or header a
local process or a client could choose, and nothing else can reach the proxy.

uvicorn still runs the ASGI lifespan, the Date header and graceful shutdown: it
is started with an empty list of sockets, so it opens no listener of its own.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from trustusbank.http_server import uvicorn_config

App = Callable[[Any, Any, Any], Awaitable[None]]

TUNNEL = "trustusbank.tunnel"
"""The scope extension naming the tunnel a request arrived on (an int the waypoint assigned)."""


def tunnel_of(scope: dict[str, Any]) -> int | None:
    """The tunnel key the HTTP layer put in this request's scope, or None."""
    extensions = scope.get("extensions")
    key = extensions.get(TUNNEL) if isinstance(extensions, dict) else None
    return key if isinstance(key, int) and not isinstance(key, bool) else None


class _TunnelProtocol(H11Protocol):
    """uvicorn's h11 protocol for one tunnel's socket; its requests' scopes carry the tunnel key."""

    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any], tunnel: int
    ) -> None:
        super().__init__(config, server_state, app_state)
        self.tunnel = tunnel

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _on_tunnel(self.app, self.tunnel)


def _on_tunnel(app: App, tunnel: int) -> App:
    async def tagged(scope: Any, receive: Any, send: Any) -> None:
        scope["extensions"] = {**(scope.get("extensions") or {}), TUNNEL: tunnel}
        await app(scope, receive, send)

    return tagged


class TunnelHttp:
    """uvicorn without a listener; `connect(key)` gives one tunnel its own HTTP connection."""

    def __init__(self, app: App, *, timeout_keep_alive: int = 5) -> None:
        # proxy_headers off (uvicorn_config): X-Forwarded-For must never rewrite the scope.
        config = uvicorn_config(
            app,
            http="h11",
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_keep_alive=timeout_keep_alive,
        )
        self.server = uvicorn.Server(config)

    @property
    def started(self) -> bool:
        return self.server.started

    async def serve(self) -> None:
        """Lifespan, then serve tunnels until `should_exit`; no socket is ever bound."""
        await self.server.serve(sockets=[])

    def exit(self) -> None:
        self.server.should_exit = True

    async def connect(self, tunnel: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A fresh HTTP connection for `tunnel`: the returned end is the tunnel's, the other uvicorn's."""
        if not self.server.started:
            raise RuntimeError("the waypoint's HTTP layer is not serving yet")
        ours, theirs = socket.socketpair()
        try:
            server = self.server
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: _TunnelProtocol(server.config, server.server_state, server.lifespan.state, tunnel),
                theirs,
            )
            return await asyncio.open_connection(sock=ours)
        except BaseException:
            ours.close()
            theirs.close()
            raise
