"""`trustusbank up [--detach]`, `down`, `status`, `exec`: the embedded cluster's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trustusbank.cli.isolation_view import render_isolation
from trustusbank.cli.open_cmd import render_tabs
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.env import POD_ZYGOTE, READY_TIMEOUT
from trustusbank.paths import deploy_dir, state_dir
from trustusbank.runtime import control

if TYPE_CHECKING:  # the supervisor (the whole runtime) loads only where it runs: `up` in the foreground
    from collections.abc import Callable

    from trustusbank.runtime.isolation import Isolation
    from trustusbank.runtime.supervisor import Supervisor

out = Console()
err = Console(stderr=True, soft_wrap=True)


def _short(node: str) -> str:
    return node.removeprefix("trustusbank-")


def render_busy_ports(status: dict[str, Any]) -> None:
    """A seed port this cluster could not bind, said first: the browser tab there is another cluster's."""
    for f in status.get("forwards", []):
        if not str(f.get("state", "")).startswith("http"):
            err.print(
                f"[bold red]warning:[/] port {f['local_port']} for {f['name']} is not this cluster's "
                f"({f['state']}); a browser there reaches something else. `ask` uses this cluster's "
                "own chatbot address; `down` the other cluster to get the port back.",
                highlight=False,
            )
    for page in (status.get("console") or {}).get("pages", []):
        if page.get("note"):
            err.print(
                f"[bold red]warning:[/] the console's {page['name']} is not on its seed port: "
                f"{page['note']}.",
                highlight=False,
            )


def render_console(status: dict[str, Any]) -> None:
    """Where the operator's console serves each page: dashboard, sessions, alerts, inbox, registry."""
    console = status.get("console")
    if not console:
        return
    state = "" if console.get("ready") else " (not ready: see its log, logs/console.log)"
    for page in console.get("pages", []):
        out.print(f"console {page['name']}: {page['url']}{state}", soft_wrap=True, highlight=False)


def render_control_plane(status: dict[str, Any]) -> None:
    """istiod: its own process, restarted when it dies, as the pods are."""
    for c in status.get("control_plane", []):
        ready = "[green]ready[/]" if c["ready"] else "[red]not ready[/]"
        out.print(f"control plane {c['name']}: pid {c['pid'] or '-'}, {ready}, restarts {c['restarts']}")


def render_status(status: dict[str, Any]) -> None:
    render_busy_ports(status)
    render_control_plane(status)
    nodes = Table(title="nodes", title_justify="left", box=None, padding=(0, 2, 0, 0))
    for column in ("node", "role", "address", "ztunnel pid", "ready"):
        nodes.add_column(column, no_wrap=True)
    for n in status.get("nodes", []):
        ready = "[green]yes[/]" if n["ready"] else "[red]no[/]"
        nodes.add_row(_short(n["name"]), n["role"], n["ip"], str(n["ztunnel_pid"] or "-"), ready)
    # Pods under their namespace's row, so the widest cell is a namespace or a name, not both: at
    # 80 columns nothing needs wrapping. Names never wrap; only the address list may, between addresses.
    pods = Table(title="pods", title_justify="left", box=None, padding=(0, 1, 0, 0))
    pods.add_column("pod", no_wrap=True)
    pods.add_column("node", no_wrap=True)
    pods.add_column("address")
    for column in ("ready", "restarts"):
        pods.add_column(column, no_wrap=True)
    namespace = None
    for p in sorted(status.get("pods", []), key=lambda p: str(p["namespace"])):
        if p["namespace"] != namespace:
            namespace = p["namespace"]
            pods.add_row(Text(f"{namespace}/", style="bold"))
        address = ", ".join(f"{p['ip']}:{port}" for port in p["ports"])
        ready = "[green]yes[/]" if p["ready"] else "[red]no[/]"
        pods.add_row(Text(f"  {p['name']}"), _short(p["node"]), address, ready, str(p["restarts"]))
    out.print(nodes)
    out.print()
    out.print(pods)
    out.print("\n[bold]identities[/]")
    width = max((len(p["namespace"]) + len(p["name"]) + 1 for p in status.get("pods", [])), default=0)
    for p in status.get("pods", []):
        name = f"{p['namespace']}/{p['name']}"
        out.print(f"{name:<{width}}  {p['identity']}", soft_wrap=True, highlight=False)
    out.print("\n[bold]isolation[/]")
    for p in status.get("pods", []):
        name = f"{p['namespace']}/{p['name']}"
        namespaces = p.get("namespaces")
        if isinstance(namespaces, dict):
            shown = " ".join(namespaces.get(k, "?") for k in ("net", "mnt", "pid")) or "not running"
        else:
            shown = str(namespaces or "host (shared)")
        out.print(f"{name:<{width}}  uid {p.get('uid', '?')}  {shown}", soft_wrap=True, highlight=False)
    for f in status.get("forwards", []):
        out.print(f"forward {f['name']}: {f['state']}", soft_wrap=True)
    render_console(status)
    render_isolation(out, status.get("isolation") or {})


def _render_tabs(status: dict[str, Any]) -> None:
    out.print("\n[bold]the write-up's browser tabs[/] (what to watch in each act: `trustusbank open`)")
    render_tabs(status, out, acts=False)


def _check_not_running(files: ClusterFiles) -> None:
    pid = control.running_pid(files)
    if pid is not None:
        err.print(f"[red]error:[/] a cluster is already running from {files.state} (supervisor pid {pid})")
        raise typer.Exit(1)
    lost = control.lost_supervisor(files)
    if lost is not None and lost.survivors:  # they would serve beside the new cluster, unmanaged
        err.print(f"[red]error:[/] {lost.describe()}", highlight=False)
        raise typer.Exit(1)


def _note(lost: control.LostSupervisor | None) -> None:
    """What became of the last cluster from this state, when its supervisor died without stopping it."""
    if lost is not None:
        err.print(f"[yellow]note:[/] {lost.describe()}", highlight=False)


async def _foreground(supervisor: Supervisor, announce: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(supervisor.run(stop))
    settled = asyncio.create_task(supervisor.settled.wait())
    await asyncio.wait((task, settled), return_when=asyncio.FIRST_COMPLETED)
    settled.cancel()
    if announce and supervisor.phase == "Running":
        status = control.read_status(supervisor.files) or {}
        render_status(status)
        _render_tabs(status)
        err.print("cluster running; Ctrl-C stops it")
    await task


def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once every pod is ready.")] = False,
    supervise: Annotated[bool, typer.Option("--supervise", hidden=True)] = False,
) -> None:
    """Start the cluster described by deploy/: istiod, a ztunnel per node, every Deployment's pod."""
    files = ClusterFiles(state_dir())
    if not supervise:
        _check_not_running(files)
    if detach:
        _note(control.lost_supervisor(files))  # recorded by the supervisor it starts; said here
        proc = control.spawn_detached(files, dict(os.environ))
        with err.status("starting the cluster") as spinner:
            status = control.wait_running(files, proc, spinner.update, READY_TIMEOUT.read() * 3)
        if status.get("phase") != "Running":
            err.print(f"[red]error:[/] the cluster did not start: {status.get('message')}")
            err.print(f"supervisor log: {files.logs / 'supervisor.log'}")
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            raise typer.Exit(1)
        render_status(status)
        _render_tabs(status)
        return
    from trustusbank.kernel.syscalls import refuse_inspection
    from trustusbank.runtime.isolation import prepare as prepare_isolation

    isolation = prepare_isolation()  # before any thread: it may enter a user namespace
    refuse_inspection()  # the supervisor holds the image signing keys: no core dumps, no ptrace
    files.make()
    _note(control.record_lost_supervisor(files))
    files.pid.write_text(str(os.getpid()))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        with err.status("starting the cluster") as spinner:
            progress = spinner.update if not supervise else (lambda m: logging.getLogger("up").info(m))
            if supervise:
                spinner.stop()
            asyncio.run(_supervise(files, progress, isolation, announce=not supervise))
    finally:
        files.pid.unlink(missing_ok=True)


async def _supervise(
    files: ClusterFiles, progress: Callable[[str], None], isolation: Isolation, *, announce: bool
) -> None:
    """The supervisor, with the pod zygote launched first: it imports while the supervisor does."""
    from trustusbank.runtime.zygote_client import ZygoteClient, ZygoteUnavailable

    zygote = None
    if POD_ZYGOTE.read():
        with contextlib.suppress(ZygoteUnavailable):  # the supervisor tries again, and logs why
            zygote = await ZygoteClient.launch(files.logs / "zygote.log")
    try:
        from trustusbank.runtime.supervisor import Supervisor

        supervisor = Supervisor(files, deploy_dir(), progress, isolation, zygote)
    except BaseException:
        if zygote is not None:
            await zygote.stop()
        raise
    await _foreground(supervisor, announce=announce)


def down() -> None:
    """Stop the cluster: pods first, then node proxies and istiod."""
    files = ClusterFiles(state_dir())
    with err.status("stopping the cluster") as spinner:
        stopped = control.stop(files, spinner.update)
    err.print("cluster stopped" if stopped else f"no cluster is running from {files.state}")
    if not stopped:
        _note(control.lost_supervisor(files))


def status() -> None:
    """Pods, nodes, identities and addresses of the running cluster."""
    files = ClusterFiles(state_dir())
    current = control.read_status(files)
    if control.running_pid(files) is None or current is None:
        lost = control.lost_supervisor(files)
        err.print(lost.describe() if lost is not None else f"no cluster is running from {files.state}")
        raise typer.Exit(1)
    out.print(f"phase: {current['phase']}  (state {files.state}, subnet 127.{current['subnet']}.0.0/16)")
    render_status(current)


def exec_(
    pod: Annotated[str, typer.Argument(help="<namespace>/<deployment or pod>")],
    command: Annotated[list[str], typer.Argument(help="The command to run inside the pod's network.")],
) -> None:
    """Run a command inside a pod: its namespaces and uid when isolated, its capture either way."""
    files = ClusterFiles(state_dir())
    if control.running_pid(files) is None:
        err.print(f"no cluster is running from {files.state}")
        raise typer.Exit(1)
    argv = command[1:] if command[:1] == ["--"] else command
    if not argv:
        err.print("[red]error:[/] no command given; usage: trustusbank exec <ns>/<deployment> -- <command>")
        raise typer.Exit(2)
    found = control.pod_command(files, pod, argv)
    if found is None:
        err.print(f"[red]error:[/] no pod {pod!r}")
        raise typer.Exit(1)
    try:
        code = subprocess.run(found.argv, env=found.env, cwd=found.cwd, check=False).returncode
    except FileNotFoundError:
        err.print(f"[red]error:[/] command not found: {argv[0]}")
        raise typer.Exit(127) from None
    raise typer.Exit(code)
