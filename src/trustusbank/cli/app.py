"""The `trustusbank` command: one entry point for every workload and every operator task."""

from __future__ import annotations

import typer

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

app = typer.Typer(
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
