"""`trustusbank policy lint [PATH]`: what a real cluster will actually enforce of these policies."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trustusbank.paths import deploy_dir

app = typer.Typer(help="Check policies against what Istio ambient and agentgateway really enforce.")


class Format(StrEnum):
    human = "human"
    json = "json"


@app.callback()
def _group() -> None:
    """Policy tools."""


@app.command("lint")
def lint(
    path: Annotated[
        Path | None,
        typer.Argument(help="A manifest file or folder; default: the deploy/ bundle.", show_default=False),
    ] = None,
    output: Annotated[
        Format, typer.Option("--format", help="human (grouped by file) or json.")
    ] = Format.human,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
) -> None:
    """Report AuthorizationPolicy and AgentgatewayPolicy rules that do nothing (or too much) on a cluster.

    Exit status: 1 if there is any error (or, with --strict, any warning), else 0.
    """
    # The linter (CEL, the schemas, the mesh's own rule evaluation) loads when it runs, not for `--help`.
    from trustusbank.lint import Severity, lint_path, render_human, render_json

    target = path if path is not None else deploy_dir()
    try:
        findings = lint_path(target)
    except FileNotFoundError:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/] {target}: no such file or directory")
        raise typer.Exit(2) from None
    if output == Format.json:
        typer.echo(render_json(findings))
    else:
        render_human(findings, Console(soft_wrap=True, highlight=False))
    failing = {Severity.ERROR, Severity.WARNING} if strict else {Severity.ERROR}
    if any(f.severity in failing for f in findings):
        raise typer.Exit(1)
