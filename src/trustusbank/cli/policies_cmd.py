"""`trustusbank policies on|off|status`: the defence policy set of deploy/08-defence, live."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trustusbank.cluster.layout import DEFENCE_DIR, ClusterFiles
from trustusbank.manifests.manifest import ManifestError
from trustusbank.manifests.yaml_source import yaml_files
from trustusbank.paths import deploy_dir, state_dir
from trustusbank.runtime.apply import applied, apply, delete

app = typer.Typer(help="Apply or remove the defence policy set (deploy/08-defence).", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)


def _files() -> ClusterFiles:
    return ClusterFiles(state_dir())


def _defence() -> list[Path]:
    return [deploy_dir() / DEFENCE_DIR]


@app.command()
def on() -> None:
    """Apply the defence set: default-deny per namespace, SPIFFE-principal ALLOWs, deny-bank-to-attacker."""
    try:
        installed = apply(_files(), deploy_dir(), _defence())
    except ManifestError as exc:
        err.print(f"[red]error:[/] the defence set does not validate; nothing was applied:\n{exc}")
        raise typer.Exit(1) from None
    for path in installed:
        err.print(f"applied {path.name}")


@app.command()
def off() -> None:
    """Remove the defence set."""
    removed = delete(_files(), _defence())
    err.print("\n".join(f"removed {p.name}" for p in removed) or "the defence set was not applied")


@app.command("status")
def show() -> None:
    """Whether the defence set is on, and what else is applied on top of deploy/."""
    names = {p.name for p in applied(_files())}
    defence = {p.name for d in _defence() for p in yaml_files(d)}
    typer.echo(f"defence {'on' if defence <= names else 'off' if not defence & names else 'partly on'}")
    for name in sorted(names - defence):
        typer.echo(f"also applied: {name}")


def apply_files(
    files: Annotated[
        list[Path], typer.Option("--filename", "-f", help="Manifest file or folder; repeatable.")
    ],
) -> None:
    """Apply manifests to the running cluster (validated first), like `kubectl apply -f`."""
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
    removed = delete(_files(), files)
    err.print("\n".join(f"removed {p.name}" for p in removed) or "nothing to remove")
