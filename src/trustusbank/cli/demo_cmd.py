"""`trustusbank demo`: the README's main command.

At this stage it runs the foundation walk-through (real workloads, real MCP
calls, no agent or mesh yet); the three acts replace it when those exist.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from trustusbank.scenario import walkthrough
from trustusbank.workloads.launcher import LaunchError

out = Console()
err = Console(stderr=True, soft_wrap=True)


def _short(value: Any, limit: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary(step: walkthrough.Step) -> str:
    if step.error:
        return f"[red]error:[/] {step.error}"
    result = step.result or {}
    if "transactions" in result:
        return f"{len(result['transactions'])} transactions"
    if "converted" in result:
        return f"{result['converted']:,.2f} {result['to_ccy']}"
    if "balance" in result:
        return f"{result['balance']:,.2f} {result['currency']}"
    if "ni_number" in result:
        return "full PII profile"
    return _short(result, 40)


def _flag(step: walkthrough.Step) -> str:
    if "customer_profile" in step.arguments:
        return "[bold red]PII passed in[/]"
    return "[bold red]← injection[/]" if step.injected else ""


def _render_phase(phase: walkthrough.Phase) -> None:
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
    for column in ("call", "result", ""):
        table.add_column(column, no_wrap=True)
    for step in phase.steps:
        table.add_row(f"{step.server} › {step.tool}", _summary(step), _flag(step))
    reg = phase.registry
    drift = "[green]matches the pin[/]" if reg["digest_matches_pin"] else "[bold red]differs from the pin[/]"
    new_events = phase.attacker_after - phase.attacker_before
    colour = "red" if new_events else "green"
    out.print(f"[bold]{phase.title}[/]")
    out.print(table)
    out.print(f"  customer sees:   [bold]{phase.reply}[/]")
    out.print(f"  attacker events: {phase.attacker_before} → [{colour}]{phase.attacker_after}[/]")
    out.print(f"  registry:        {reg['running_build']} build {reg['running_digest'][:19]}… {drift}")
    out.print()


def demo(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of tables.")
    ] = False,
) -> None:
    """Run the attack's tool chain against the real workloads and report what happened."""
    try:
        with err.status("starting the bank's workloads") as status:
            result = asyncio.run(walkthrough.run(lambda message: status.update(message)))
    except LaunchError as exc:
        err.print(f"[red]error:[/] a workload did not start: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(json.dumps({**dataclasses.asdict(result), "ok": result.ok}))
    else:
        out.print(f"[dim]customer prompt:[/] {walkthrough.PROMPT}\n")
        for phase in result.phases:
            _render_phase(phase)
        if result.loot:
            out.print(
                Panel(_short(result.loot[0]["body"], 400), title="what the attacker received", style="red")
            )
        if result.ok:
            out.print(
                "[bold]verdict:[/] the rug-pulled build leaked the profile through a tool argument "
                "while the customer saw the same reply. Nothing in the runtime stopped it yet: that is the "
                "mesh's job (SPIFFE identity, HBONE, L4 policy, MCP allowlists)."
            )
    if not result.ok:
        for problem in result.problems:
            err.print(f"[red]unexpected:[/] {problem}")
        raise typer.Exit(1)
