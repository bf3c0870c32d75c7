"""The `trustusbank` command: one entry point for every workload and every operator task."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import typer
import typer.main
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from trustusbank import __version__
from trustusbank.errors import TrustusbankError


@dataclass(frozen=True)
class Entry:
    """One command of the surface: where it lives, and the line `--help` shows for it."""

    module: str
    attribute: str
    """A function (one command) or a `typer.Typer` (a group of subcommands)."""
    summary: str
    hidden: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


_C = "trustusbank.cli."
# Every command, in `--help` order. A command's module is imported only when it runs (or its own
# `--help` is asked for): each pulls in its part of the system (the MCP SDK, the mesh, the agents),
# and the root `--help` should not pay for all of them. tests/cli/test_app.py checks each summary
# against the command's own help.
COMMANDS: dict[str, Entry] = {
    "demo": Entry(
        _C + "demo_cmd",
        "demo",
        "The supply-chain attack in three acts, with receipts; exit 0 only when the story holds.",
    ),
    "act": Entry(
        _C + "demo_cmd",
        "act",
        "Run one act: make its change to the running system, ask the seed's question, show the receipts.",
    ),
    "ask": Entry(
        _C + "ask_cmd",
        "ask_command",
        "Ask the bank's agent a question through the chatbot, and show its tool-call chain.",
    ),
    "upgrade-banking-app": Entry(
        _C + "acts_cmd",
        "upgrade_banking_app",
        "Rug-pull the currency converter: new bytes behind the same image tag, the pod restarted onto them.",
    ),
    "reset": Entry(
        _C + "acts_cmd",
        "reset_command",
        "Back to the baseline (Act 1): clean converter build, no defence policies, "
        "the bank's seed data, the attacker's view reset.",
    ),
    "serve": Entry(_C + "serve_cmd", "serve", "Run one of the bank's workloads as a server."),
    "up": Entry(
        _C + "cluster_cmd",
        "up",
        "Start the cluster described by deploy/: istiod, a ztunnel per node, every Deployment's pod.",
    ),
    "down": Entry(_C + "cluster_cmd", "down", "Stop the cluster: pods first, then node proxies and istiod."),
    "status": Entry(
        _C + "cluster_cmd", "status", "Pods, nodes, identities and addresses of the running cluster."
    ),
    "open": Entry(
        _C + "open_cmd",
        "open_command",
        "The write-up's eight browser tabs: their addresses on this cluster and what to watch in each act.",
    ),
    "exec": Entry(
        _C + "cluster_cmd",
        "exec_",
        "Run a command inside a pod: its namespaces and uid when isolated, its capture either way.",
        settings={"context_settings": {"allow_interspersed_args": False}},
    ),
    "apply": Entry(
        _C + "policies_cmd",
        "apply_files",
        "Apply manifests to the running cluster (validated first), like `kubectl apply -f`.",
    ),
    "delete": Entry(
        _C + "policies_cmd",
        "delete_files",
        "Remove manifests applied earlier, by file name, like `kubectl delete -f`.",
    ),
    "policies": Entry(
        _C + "policies_cmd", "app", "Apply or remove the defence policy set (deploy/08-defence)."
    ),
    "policy": Entry(
        _C + "lint_cmd", "app", "Check policies against what Istio ambient and agentgateway really enforce."
    ),
    "mesh": Entry(
        _C + "mesh_cmd", "app", "The mesh's own processes (started by `trustusbank up`).", hidden=True
    ),
    "console": Entry(
        _C + "console_cmd",
        "app",
        "The operator's console: DORA evidence, agent sessions, alerts, SOC inbox, registry.",
        hidden=True,
    ),
    "manifests": Entry(_C + "manifests_cmd", "app", "Inspect and validate the Kubernetes manifest bundle."),
    "k8s": Entry(
        _C + "k8s_cmd",
        "app",
        "A real Kubernetes cluster: Istio ambient, agentgateway, kagent and deploy/ (kind or your context).",
    ),
    "evidence": Entry(
        _C + "evidence_cmd",
        "app",
        "The evidence store: ingest the cluster's logs and spans, verify the chain, query, trace, report.",
    ),
    "bench": Entry(
        _C + "bench_cmd",
        "app",
        "Score the runtime's defences AgentDojo-style: utility, utility under attack, attack success.",
    ),
}


def load(name: str) -> Any:
    """The real command behind `name` (a click command or group), its module imported now."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name, group.hidden = name, entry.hidden
        return group
    return _single(name, target, entry.settings)


def listed(name: str) -> Any:
    """What the root `--help` shows for `name`: its summary, nothing imported."""
    entry = COMMANDS[name]
    return _single(name, lambda: None, {"help": entry.summary, "hidden": entry.hidden})


def _single(name: str, function: Any, settings: dict[str, Any]) -> Any:
    command = typer.Typer()
    command.command(name, **settings)(function)
    return typer.main.get_command(command)


def report_error(exc: TrustusbankError) -> None:
    """`error: <message>` on stderr; the message is text, never markup (it may quote anyone's data)."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(Text("error: ", style="red") + Text(str(exc)))


class Commands(TyperGroup):
    """The root command group.

    Commands load lazily from `COMMANDS`; the root `--help` lists them from their summaries
    without importing any. A `TrustusbankError` no command handled itself becomes
    `error: <message>` on stderr and exit status 1, whichever command raised it. Commands only
    catch an error when they do something more with it: another exit status, a pod's log tail,
    the list of problems, a sentence of context."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        return listed(cmd_name) if self._listing else load(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

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


@app.callback()
def _root() -> None:
    # A callback keeps the app a group even with one eager command.
    pass


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
