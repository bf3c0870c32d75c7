"""Hidden commands the embedded runtime starts: the mesh's own processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.kernel.syscalls import die_with_parent, refuse_inspection
from trustusbank.paths import state_dir

app = typer.Typer(help="The mesh's own processes (started by `trustusbank up`).")


def _run_until_signalled(main: Callable[[], Awaitable[None]]) -> None:
    """Run a component until SIGINT/SIGTERM, then let it clean up."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    refuse_inspection()  # it holds SVID keys (istiod: the CA key): no core dumps, no ptrace
    die_with_parent(signal.SIGTERM)  # the supervisor's part of the cluster ends with it

    async def runner() -> None:
        task = asyncio.ensure_future(main())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(runner())


@app.command()
def ztunnel(
    node: Annotated[str, typer.Option(help="The node this proxy serves.")],
    deploy: Annotated[Path, typer.Option(help="The manifest bundle.")],
    netns: Annotated[
        list[str] | None,
        typer.Option(help="<namespace>/<pod>=<fd>: an inherited network namespace to capture in."),
    ] = None,
) -> None:
    """Run the node proxy of one node."""
    from trustusbank.kernel.netns import NetworkNamespace
    from trustusbank.mesh.ztunnel.node import NodeProxy

    namespaces = {}
    for item in netns or []:
        ref, sep, fd = item.rpartition("=")
        if not sep or not fd.isdigit():
            raise typer.BadParameter(f"--netns {item!r}: expected <namespace>/<pod>=<fd>")
        namespaces[ref] = NetworkNamespace(int(fd))
    files = ClusterFiles(state_dir())
    _run_until_signalled(lambda: NodeProxy(files, node, deploy, namespaces).run())


@app.command()
def waypoint(
    gateway: Annotated[str, typer.Option(help="<namespace>/<name> of the waypoint Gateway.")],
    deploy: Annotated[Path, typer.Option(help="The manifest bundle.")],
) -> None:
    """Run the waypoint proxy (agentgateway's role) of one Gateway."""
    from trustusbank.mesh.waypoint.process import Waypoint

    _run_until_signalled(lambda: Waypoint(ClusterFiles(state_dir()), gateway, deploy).run())


@app.command()
def istiod() -> None:
    """Run istiod's CA: sign the node proxies' and waypoints' CSRs on the state dir's socket."""
    from trustusbank.env import SVID_TTL_SECONDS
    from trustusbank.mesh.identity.istiod_process import serve

    ttl = timedelta(seconds=SVID_TTL_SECONDS.read())
    _run_until_signalled(lambda: serve(ClusterFiles(state_dir()), ttl))
