"""The `trustusbank` command: one entry point for every workload and every operator task."""

from __future__ import annotations

import typer

from trustusbank import __version__
from trustusbank.cli import demo_cmd, manifests_cmd, serve_cmd

app = typer.Typer(
    name="trustusbank",
    help="The trustusbank agentic-DORA reference pattern: MCP tools, a gullible agent, a mesh that holds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo_cmd.demo)
app.command("serve")(serve_cmd.serve)
app.add_typer(manifests_cmd.app, name="manifests")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
