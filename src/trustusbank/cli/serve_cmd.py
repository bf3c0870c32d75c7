"""`trustusbank serve <workload>`: the container entry point of every workload."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trustusbank.env import BUILD_VARIANT, POD_IP
from trustusbank.workloads.entrypoints import WORKLOADS  # names and ports only: each app loads when built

err = Console(stderr=True, soft_wrap=True)


def pod_address(host: str) -> str:
    """Inside an embedded pod, "all interfaces" means the pod's own private address."""
    pod_ip = POD_IP.read()
    return pod_ip if host in ("0.0.0.0", "::") and pod_ip else host


def serve(
    workload: Annotated[str, typer.Argument(help=f"One of: {', '.join(WORKLOADS)}.", show_default=False)],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: the workload's own].")] = None,
    variant: Annotated[
        str | None,
        typer.Option(
            envvar=BUILD_VARIANT.name,
            help="Which build of the image to run (currency-converter: clean, mock-rugpull, real-rugpull)"
            " [default: in a pod, the build its image tag resolves to in the image store; else the first].",
        ),
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="Database file [default: under the state directory].")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run one of the bank's workloads as a server."""
    from trustusbank.images.pull import pull
    from trustusbank.images.store import ImageStoreError
    from trustusbank.workloads.serving import bind, run

    spec = WORKLOADS.get(workload)
    if spec is None:
        err.print(f"[red]error:[/] unknown workload {workload!r}; choose one of: {', '.join(WORKLOADS)}")
        raise typer.Exit(2)
    image = ""
    if variant is None:
        try:
            pulled = pull(workload)
        except ImageStoreError as exc:
            err.print(f"[red]error:[/] cannot pull the image: {exc}")
            raise typer.Exit(1) from None
        if pulled is not None:
            variant, image = pulled.build.variant, f" image {pulled.tag}@{pulled.digest}"
    chosen = variant or spec.default_variant
    if chosen not in spec.variants:
        err.print(
            f"[red]error:[/] {workload} has no build {chosen!r}; choose one of: {', '.join(spec.variants)}"
        )
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = spec.app(chosen, db)
    sock = bind(pod_address(host), port if port is not None else spec.port)
    bound_host, bound_port = sock.getsockname()[:2]
    err.print(f"{workload} ({chosen}) listening on http://{bound_host}:{bound_port}{image}")
    run(app, sock, log_level=log_level.lower())
