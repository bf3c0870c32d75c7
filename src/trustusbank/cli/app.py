"""The `trustusbank` command: one entry point for every workload and every operator task."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from trustusbank import __version__
from trustusbank.cli import (
    acts_cmd,
    ask_cmd,
    cluster_cmd,
    demo_cmd,
    evidence_cmd,
    lint_cmd,
    manifests_cmd,
    mesh_cmd,
    policies_cmd,
    serve_cmd,
)
from trustusbank.errors import TrustusbankError


def report_error(exc: TrustusbankError) -> None:
    """`error: <message>` on stderr; the message is text, never markup (it may quote anyone's data)."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(Text("error: ", style="red") + Text(str(exc)))


class Commands(TyperGroup):
    """The root command group: a `TrustusbankError` no command handled itself becomes
    `error: <message>` on stderr and exit status 1, whichever command raised it.

    Commands only catch an error when they do something more with it: another exit
    status, a pod's log tail, the list of problems, a sentence of context."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TrustusbankError as exc:
            report_error(exc)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=Commands,
    name="trustusbank",
    help="The trustusbank agentic-DORA reference pattern: MCP tools, a gullible agent, a mesh that holds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo_cmd.demo)
app.command("act")(demo_cmd.act)
app.command("ask")(ask_cmd.ask_command)
app.command("upgrade-banking-app")(acts_cmd.upgrade_banking_app)
app.command("reset")(acts_cmd.reset_command)
app.command("serve")(serve_cmd.serve)
app.command("up")(cluster_cmd.up)
app.command("down")(cluster_cmd.down)
app.command("status")(cluster_cmd.status)
app.command("exec", context_settings={"allow_interspersed_args": False})(cluster_cmd.exec_)
app.add_typer(policies_cmd.app, name="policies")
app.add_typer(lint_cmd.app, name="policy")
app.command("apply")(policies_cmd.apply_files)
app.command("delete")(policies_cmd.delete_files)
app.add_typer(mesh_cmd.app, name="mesh", hidden=True)
app.add_typer(manifests_cmd.app, name="manifests")
app.add_typer(evidence_cmd.app, name="evidence")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
