"""The console process: the dashboard (18001), where it exists the sessions console (18007), the
operator pods' pages (alerts 18002, SOC inbox 18012, agent registry 18006, each relayed to its
pod by `upstream_proxy`), and the sign-in provider (15556) whose front doors stand before all.

One process on the operator's side serves the apps, each on its own listening socket. The
embedded runtime binds those sockets itself and hands them down (`--dashboard-fd`), as
systemd's socket activation does: it learns the URLs before the process starts, a taken
seed port is known and said at once, and a console that crashes and is restarted comes back
on the same port, with no moment in which another program could take it.

The sign-in (`console.signin`: dex's role on 15556, the write-up's admin@kagent.local / admin,
and oauth2-proxy's before each page) is on unless `TRUSTUSBANK_CONSOLE_SIGNIN=0`. Its seed
port, 15556, is dex's default (5556) moved up among the local forwards' ports.

The sessions app is another part's (`trustusbank.console.sessions`, `create_app(files)`);
it is imported only if that module exists, and its absence is not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import signal
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.console.pages import ALERTS, DASHBOARD, INBOX, REGISTRY, SESSIONS, SIGNIN, Page
from trustusbank.console.upstream_proxy import Upstream, UpstreamProxy
from trustusbank.env import CONSOLE_SIGNIN
from trustusbank.http_server import uvicorn_config

SESSIONS_MODULE = "trustusbank.console.sessions"


# The pages that are a pod's app, relayed: the write-up port-forwards them, and here the door
# stands before them as before the console's own.
UPSTREAMS = {
    ALERTS.name: Upstream("Alerts (Prometheus)", "trustusbank-observability", "alert-evaluator"),
    INBOX.name: Upstream("SOC inbox", "trustusbank-observability", "soc-inbox"),
    REGISTRY.name: Upstream("Agent registry", "trustusbank-platform", "agentregistry"),
}
PROXIED = [ALERTS, INBOX, REGISTRY]


def has_sessions() -> bool:
    """Whether the sessions console is part of this installation (without importing it)."""
    return importlib.util.find_spec(SESSIONS_MODULE) is not None


def signin_on() -> bool:
    """Whether the console's pages are behind the sign-in (`TRUSTUSBANK_CONSOLE_SIGNIN`)."""
    return CONSOLE_SIGNIN.read()


def pages() -> list[Page]:
    """The console's sockets, the dashboard first (its `/healthz` is the readiness probe)."""
    found = [DASHBOARD, SESSIONS] if has_sessions() else [DASHBOARD]
    found += PROXIED
    return [*found, SIGNIN] if signin_on() else found


def proxy_app(files: ClusterFiles, page: Page) -> ASGIApp:
    """The relay to `page`'s pod, found in `files`' topology."""
    return UpstreamProxy(files.topology, UPSTREAMS[page.name])


def sessions_app(files: ClusterFiles) -> ASGIApp | None:
    """The sessions console over `files`, or None where it is not installed."""
    try:
        module = importlib.import_module(SESSIONS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == SESSIONS_MODULE:
            return None
        raise  # it is there, and something it imports is not: that is a fault to see
    app: ASGIApp = module.create_app(files)
    return app


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the process has several servers and stops them all."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_all(apps: list[tuple[ASGIApp, socket.socket]]) -> None:
    """Serve each app on its socket until SIGINT or SIGTERM, or until one of them stops."""
    servers = [
        _Server(uvicorn_config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=3))
        for app, _ in apps
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    sockets = [sock for _, sock in apps]
    tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in zip(servers, sockets, strict=True)]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()  # one ended (it failed to start, or was told to stop): the console is not whole
    await asyncio.gather(*tasks)
