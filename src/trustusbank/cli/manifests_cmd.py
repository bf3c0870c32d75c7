"""`trustusbank manifests check`: validate the bundle before anything tries to run it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from trustusbank import paths
from trustusbank.manifests.bundle import check_bundle
from trustusbank.manifests.manifest import ManifestError, Problem

app = typer.Typer(help="Inspect and validate the Kubernetes manifest bundle.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    # A callback keeps `check` a subcommand even while it is the only one.
    pass


@app.command()
def check(
    path: Annotated[
        Path | None, typer.Argument(help="Bundle directory or file; defaults to the deploy directory.")
    ] = None,
) -> None:
    """Report every problem with file and line; exit 1 if there is any."""
    console = Console(highlight=False)
    bundle = path or paths.deploy_dir()
    try:
        report = check_bundle(bundle)
    except ManifestError as error:
        _print_problems(console, error.problems)
        raise typer.Exit(1) from error
    counts = Counter(m.kind for m in report.objects)
    console.print(f"[bold]{escape(str(_relative(bundle)))}[/]: {len(report.objects)} objects")
    for kind, count in sorted(counts.items()):
        console.print(f"  {kind:<16} {count}")
    if report.problems:
        _print_problems(console, report.problems)
        raise typer.Exit(1)
    console.print("[green]no problems[/]")


def _print_problems(console: Console, problems: list[Problem]) -> None:
    for problem in problems:
        shown = Problem(_relative(problem.file), problem.line, problem.message)
        console.print(str(shown), style="red", markup=False, soft_wrap=True)
    console.print(f"[red bold]{len(problems)} problem{'s' if len(problems) != 1 else ''}[/]")


def _relative(file: Path) -> Path:
    """Paths relative to the working directory are shorter and clickable in most terminals."""
    try:
        return file.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return file
