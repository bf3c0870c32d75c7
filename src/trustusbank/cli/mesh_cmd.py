"""Hidden commands the embedded runtime starts: the mesh's own processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from trustusbank.paths import state_dir
from trustusbank.runtime.layout import ClusterFiles

app = typer.Typer(help="The mesh's own processes (started by `trustusbank up`).")


@app.command()
def ztunnel(
    node: Annotated[str, typer.Option(help="The node this proxy serves.")],
    deploy: Annotated[Path, typer.Option(help="The manifest bundle.")],
) -> None:
    """Run the node proxy of one node."""
    from trustusbank.mesh.ztunnel.node import NodeProxy

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        proxy = NodeProxy(ClusterFiles(state_dir()), node, deploy)
        task = asyncio.create_task(proxy.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
