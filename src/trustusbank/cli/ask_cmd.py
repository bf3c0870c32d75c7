"""`trustusbank ask "<prompt>"`: what the customer's chat page does, from a terminal.

It goes through the chatbot's A2A proxy, never straight to the agent, so the
agent sees the same caller (the chatbot's identity) as when a customer types in
the page, and an AccessPolicy deny shows up here exactly as it would there.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from trustusbank.workloads.chatbot.names import DEFAULT_AGENT, parse_agent

if TYPE_CHECKING:  # the A2A client loads when a question is asked, not at every CLI start
    from trustusbank.workloads.chatbot.client import AskResult

DEFAULT_CHATBOT = "http://127.0.0.1:18009"

err = Console(stderr=True, soft_wrap=True, highlight=False)


def _compact(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step_label(step: dict[str, Any]) -> Text:
    # Text, never markup: names, arguments and results are data, some of it an attacker's.
    is_agent = step.get("type") == "agent"
    label = Text()
    label.append("agent " if is_agent else "", style="magenta")
    label.append(str(step.get("name", "?")), style="bold magenta" if is_agent else "bold")
    if step.get("server"):
        label.append(f" @ {step['server']}", style="dim")
    if "arguments" in step:
        label.append(" " + _compact(step.get("arguments")), style="cyan")
    if isinstance(step.get("duration_ms"), int | float):
        label.append(f"  {step['duration_ms']:.0f} ms", style="dim")
    if step.get("is_error"):
        label.append("  ✗ error", style="bold red")
    if step.get("result") is not None:
        label.append("\n→ " + _compact(step["result"], 160), style="red" if step.get("is_error") else "dim")
    return label


def _add_steps(tree: Tree, steps: list[Any]) -> None:
    for step in steps:
        if isinstance(step, dict):
            branch = tree.add(_step_label(step))
            if isinstance(step.get("steps"), list):
                _add_steps(branch, step["steps"])


def chain_tree(result: AskResult, agent: str) -> Tree:
    tree = Tree(Text(f"tool calls of {agent}", style="bold"))
    _add_steps(tree, result.tool_calls)
    if not result.tool_calls:
        tree.add(Text("(none)", style="dim"))
    return tree


def ask_command(
    prompt: Annotated[str, typer.Argument(help="What the customer types.", show_default=False)],
    chatbot: Annotated[
        str | None,
        typer.Option(
            help="The chatbot's URL. Default: the chatbot of the cluster running from this state dir "
            "(its port-forward, or its pod address when another cluster holds the port), "
            f"else {DEFAULT_CHATBOT}.",
            show_default=False,
        ),
    ] = None,
    agent: Annotated[str, typer.Option(help="The agent, as <namespace>/<name>.")] = DEFAULT_AGENT,
    context_id: Annotated[
        str | None, typer.Option("--context-id", help="Continue this conversation.", show_default=False)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {reply, tool_calls, task_id, context_id, state}.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 300.0,
    k8s: Annotated[
        bool, typer.Option("--k8s", help="Through the chatbot of the cluster `trustusbank k8s up` installed.")
    ] = False,
) -> None:
    """Ask the bank's agent a question through the chatbot, and show its tool-call chain."""
    try:
        parse_agent(agent)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--agent") from None
    from trustusbank.workloads.chatbot.client import ask

    if chatbot is None and k8s:
        from trustusbank.cli.k8s_story import options
        from trustusbank.k8s import forwards

        chosen = options(None)
        chatbot = forwards.ensure(chosen.workdir, chosen.kube_context)["chatbot"]
    if chatbot is None:
        from trustusbank.cluster.layout import ClusterFiles
        from trustusbank.paths import state_dir
        from trustusbank.runtime.control import chatbot_url

        chatbot = chatbot_url(ClusterFiles(state_dir())) or DEFAULT_CHATBOT

    # An AskError is reported by the root command group (cli/app.py): `error: <sentence>`, exit 1.
    result = asyncio.run(ask(prompt, chatbot=chatbot, agent=agent, context_id=context_id, wait=timeout))
    if as_json:
        document = asdict(result)
        document.pop("status_message")
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        out = Console(highlight=False)  # sized now, so long tool calls wrap inside the tree
        if result.reply:
            out.print(Text(result.reply))
            out.print()
        out.print(chain_tree(result, agent))
        if result.context_id:
            out.print(Text(f"continue with --context-id {result.context_id}", style="dim"))
    if result.state != "completed":
        why = result.status_message or "no reason given"
        err.print(Text("error: ", style="red") + Text(f"the task ended {result.state}: {why}"))
        raise typer.Exit(1)
