"""`trustusbank console serve`: the operator's console, 18001 (DORA evidence), 18007 (sessions) and
the operator pods' pages it relays (18002 alerts, 18012 SOC inbox, 18006 agent registry), behind
the sign-in whose provider is on 15556."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from trustusbank.console.pages import ALERTS, DASHBOARD, INBOX, REGISTRY, SESSIONS, SIGNIN

# The console's servers (uvicorn, Starlette, the relays, the sign-in) load in `serve`, when it
# runs, so `--help` stays light.
if TYPE_CHECKING:
    from starlette.types import ASGIApp

app = typer.Typer(help="The operator's console: DORA evidence, agent sessions, alerts, SOC inbox, registry.")
err = Console(stderr=True, soft_wrap=True, highlight=False)


def _socket(fd: int | None, host: str, port: int) -> socket.socket:
    """The listening socket handed down as `fd`, or a new one bound to host:port."""
    from trustusbank.workloads.serving import bind

    if fd is not None:
        return socket.socket(fileno=fd)
    return bind(host, port)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    dashboard_port: Annotated[int, typer.Option(help="The dashboard's port.")] = DASHBOARD.seed_port,
    sessions_port: Annotated[int, typer.Option(help="The sessions console's port.")] = SESSIONS.seed_port,
    alerts_port: Annotated[int, typer.Option(help="The alerts page's port.")] = ALERTS.seed_port,
    inbox_port: Annotated[int, typer.Option(help="The SOC inbox's port.")] = INBOX.seed_port,
    registry_port: Annotated[int, typer.Option(help="The agent registry's port.")] = REGISTRY.seed_port,
    signin_port: Annotated[int, typer.Option(help="The sign-in provider's port.")] = SIGNIN.seed_port,
    prometheus: Annotated[
        str | None,
        typer.Option(help="Prometheus API for the PromQL panels [default: the alert evaluator's pod]."),
    ] = None,
    dashboard_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
    sessions_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
    alerts_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
    inbox_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
    registry_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
    signin_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Serve the console over the running cluster's state directory (`up` starts it)."""
    from trustusbank.cluster.layout import ClusterFiles
    from trustusbank.console.dashboard import create_app
    from trustusbank.console.serve import UPSTREAMS, proxy_app, serve_all, sessions_app, signin_on, url_of
    from trustusbank.console.signin.chain import sign_in_chain
    from trustusbank.kernel.syscalls import die_with_parent
    from trustusbank.paths import state_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if dashboard_fd is not None:
        die_with_parent(signal.SIGTERM)  # handed its sockets by the supervisor: it ends with it
    files = ClusterFiles(state_dir())
    sessions = sessions_app(files)
    served: list[tuple[ASGIApp, socket.socket]] = []
    sessions_url = None
    if sessions is not None:
        sock = _socket(sessions_fd, host, sessions_port)
        sessions_url = url_of(sock)
        served.append((sessions, sock))
        err.print(f"sessions on {sessions_url}{SESSIONS.path}")
    sock = _socket(dashboard_fd, host, dashboard_port)
    served.insert(0, (create_app(files, prometheus_url=prometheus, sessions_url=sessions_url), sock))
    err.print(f"DORA evidence dashboard on {url_of(sock)}{DASHBOARD.path}")
    relayed = (
        (ALERTS, alerts_port, alerts_fd),
        (INBOX, inbox_port, inbox_fd),
        (REGISTRY, registry_port, registry_fd),
    )
    for page, port, fd in relayed:
        sock = _socket(fd, host, port)
        served.append((proxy_app(files, page), sock))
        err.print(f"{page.name} on {url_of(sock)}{page.path}, relayed to {UPSTREAMS[page.name].name}")
    if signin_on():
        sock = _socket(signin_fd, host, signin_port)
        chain = sign_in_chain(files.state, url_of(sock), [(app, url_of(s)) for app, s in served])
        served = [(door, s) for door, (_, s) in zip(chain.pages, served, strict=True)]
        served.append((chain.provider, sock))
        err.print(f"sign-in provider on {url_of(sock)}{SIGNIN.path}: the pages above are behind it")
    else:
        err.print("sign-in off (TRUSTUSBANK_CONSOLE_SIGNIN=0): the pages above are open")
    asyncio.run(serve_all(served))
