"""`trustusbank policies on|off|status`: the defence policy set of deploy/08-defence, live."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trustusbank.cli.k8s_options import K8s, K8sContext
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.paths import deploy_dir, state_dir
from trustusbank.runtime import control

# Applying validates manifests (schemas, CEL) and talks to the node proxies: those modules load in
# the commands below, when one runs, so `--help` stays light.

app = typer.Typer(help="Apply or remove the defence policy set (deploy/08-defence).", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)


def _files() -> ClusterFiles:
    return ClusterFiles(state_dir())


def _switch(on: bool) -> list[Path]:
    """Apply or remove the set; on a running cluster, return once every node proxy enforces the change."""
    from trustusbank.runtime.apply import apply, delete
    from trustusbank.runtime.defence import defence_sources, set_defence

    files, deploy = _files(), control.deploy_of(_files())
    if control.running_pid(files) is None:
        sources = defence_sources(deploy)
        return apply(files, deploy, sources) if on else delete(files, sources)
    started = time.monotonic()
    changed = asyncio.run(set_defence(files, deploy, on))
    if changed:
        err.print(f"in force at every node proxy after {time.monotonic() - started:.1f} s")
    return changed


def _k8s(on: bool, context: str | None) -> None:
    from trustusbank.cli import k8s_story  # Kubernetes mode is imported only when asked for
    from trustusbank.k8s.render import render_defence

    driver = k8s_story.driver(context, lambda line: err.print(f"[dim]{line}[/]", highlight=False))
    with err.status(f"defence set {'on' if on else 'off'} on {driver.where}") as spinner:
        asyncio.run(driver.set_defence(on, spinner.update))
    for item in render_defence(deploy_dir()).left_out:
        err.print(f"not on a cluster: {item}", markup=False)
    err.print(f"the defence set is {'on' if on else 'off'} on {driver.where}")


@app.command()
def on(k8s: K8s = False, context: K8sContext = None) -> None:
    """Apply the defence set: default-deny per namespace, SPIFFE-principal ALLOWs, deny-bank-to-attacker."""
    if k8s:
        _k8s(True, context)
        return
    from trustusbank.manifests.manifest import ManifestError

    try:
        installed = _switch(True)
    except ManifestError as exc:
        err.print(f"[red]error:[/] the defence set does not validate; nothing was applied:\n{exc}")
        raise typer.Exit(1) from None
    err.print("\n".join(f"applied {p.name}" for p in installed) or "the defence set was on already")


@app.command()
def off(k8s: K8s = False, context: K8sContext = None) -> None:
    """Remove the defence set."""
    if k8s:
        _k8s(False, context)
        return
    removed = _switch(False)
    err.print("\n".join(f"removed {p.name}" for p in removed) or "the defence set was not applied")


@app.command("status")
def show() -> None:
    """Whether the defence set is on, and what else is applied on top of deploy/."""
    from trustusbank.manifests.yaml_source import yaml_files
    from trustusbank.runtime.apply import applied
    from trustusbank.runtime.defence import defence_sources, defence_state

    files = _files()
    deploy = control.deploy_of(files)
    typer.echo(f"defence {defence_state(files, deploy)}")
    defence = {p.name for d in defence_sources(deploy) for p in yaml_files(d)}
    for name in sorted({p.name for p in applied(files)} - defence):
        typer.echo(f"also applied: {name}")


def apply_files(
    files: Annotated[
        list[Path], typer.Option("--filename", "-f", help="Manifest file or folder; repeatable.")
    ],
) -> None:
    """Apply manifests to the running cluster (validated first), like `kubectl apply -f`."""
    from trustusbank.manifests.manifest import ManifestError
    from trustusbank.runtime.apply import apply

    try:
        installed = apply(_files(), deploy_dir(), files)
    except ManifestError as exc:
        err.print(f"[red]error:[/] nothing was applied:\n{exc}")
        raise typer.Exit(1) from None
    for path in installed:
        err.print(f"applied {path.name}")


def delete_files(
    files: Annotated[
        list[Path], typer.Option("--filename", "-f", help="Manifest file or folder; repeatable.")
    ],
) -> None:
    """Remove manifests applied earlier, by file name, like `kubectl delete -f`."""
    from trustusbank.runtime.apply import delete

    removed = delete(_files(), files)
    err.print("\n".join(f"removed {p.name}" for p in removed) or "nothing to remove")
