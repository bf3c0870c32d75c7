"""`trustusbank bench attacks`: the defence scored like a benchmark, on the bench's own cluster."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trustusbank.paths import deploy_dir, state_dir

# The harness starts a cluster and reads AgentDojo's wordings: imported when the command runs.

app = typer.Typer(
    help="Score the runtime's defences AgentDojo-style: utility, utility under attack, attack success.",
    no_args_is_help=True,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _many(what: str, names: tuple[str, ...]) -> Any:
    return typer.Option(help=f"{what} (repeatable; default all): {', '.join(names)}.", show_default=False)


USER_TASKS = ("balance", "statement", "conversion", "profile", "fraud-handoff", "seed")
INJECTION_TASKS = (
    "exfiltrate-profile",
    "exfiltrate-transactions",
    "flag-transaction",
    "fake-ticket",
    "forbidden-tool",
    "forbidden-handoff",
)


@app.command()
def attacks(
    model: Annotated[
        str,
        typer.Option(
            help="scripted (the gullible stand-in), compromised (obeys any injected text: the runtime "
            "alone is measured), or a ModelConfig's name in deploy/07-agents (a real model; needs its key)."
        ),
    ] = "scripted",
    user_task: Annotated[list[str] | None, _many("User tasks", USER_TASKS)] = None,
    injection_task: Annotated[list[str] | None, _many("Injection tasks", INJECTION_TASKS)] = None,
    vector: Annotated[list[str] | None, _many("Injection vectors", ("result", "description"))] = None,
    attack: Annotated[
        list[str] | None,
        typer.Option(
            help="AgentDojo attack name(s), or 'all'; default important_instructions.", show_default=False
        ),
    ] = None,
    level: Annotated[
        list[str] | None, _many("Defence levels", ("none", "l4", "allowlists", "guard", "all"))
    ] = None,
    agents: Annotated[
        str,
        typer.Option(
            help="declared (deploy/'s agents) or broad (support-bot also given flag_suspicious, the "
            "ticket tools and a hand-off to triage-bot: a too-wide Agent, held by the policies alone)."
        ),
    ] = "declared",
    quick: Annotated[bool, typer.Option(help="The smallest matrix: one cell per defence level.")] = False,
    keep: Annotated[bool, typer.Option(help="Leave the bench's cluster running afterwards.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The whole report, every cell, as JSON.")] = False,
) -> None:
    """User tasks x injection tasks x vectors x AgentDojo wordings x defence levels, on a cluster of its own.

    Prints, per defence level, AgentDojo's metrics (utility, utility under attack, targeted attack
    success rate, each with its count) and where failed attacks were stopped.
    """
    from trustusbank.scenario.bench import matrix

    options = matrix.Options(
        model=model,
        user_tasks=tuple(user_task or ()),
        injection_tasks=tuple(injection_task or ()),
        vectors=tuple(vector or ()),
        attacks=tuple(attack or ()),
        levels=tuple(level or ()),
        quick=quick,
        keep=keep,
        agents=agents,
    )
    try:
        matrix.plan(options)  # bad names fail before a cluster starts
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    shown: list[str] = []

    def progress(line: str) -> None:  # a wait repeats its line while it polls: shown once
        if shown[-1:] != [line]:
            shown.append(line)
            err.print(f"[dim]{line}[/]", highlight=False)

    report = asyncio.run(matrix.run(options, state_dir() / "bench", deploy_dir(), progress))
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title=f"trustusbank bench attacks --model {model} --agents {agents}")
    for column in ("defence level", "utility", "utility under attack", "targeted ASR", "stopped by"):
        table.add_column(column)
    for score in report.scores():
        stops = ", ".join(f"{k} {v}" for k, v in sorted(score.stopped_by.items())) or "-"
        table.add_row(
            score.level, str(score.utility), str(score.utility_under_attack), str(score.targeted_asr), stops
        )
    out.print(table)
    from trustusbank.scenario.bench.score import AGENTDOJO_GPT4O_ASR

    reference = "; ".join(f"{k} {v:.1%}" for k, v in AGENTDOJO_GPT4O_ASR.items())
    out.print(f"AgentDojo's published GPT-4o targeted ASR, for reference: {reference}", highlight=False)
