"""`trustusbank upgrade-banking-app` and `trustusbank reset`: the seed's act scripts, live."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from trustusbank.cli.k8s_options import K8s, K8sContext
from trustusbank.images.converter_builds import CLEAN, DEFAULT_RUG_PULL, RUG_PULLS

# The act scripts restart pods and validate policies (the runtime, the HTTP client, CEL): they load
# in the commands below, when one runs, so `--help` stays light.
if TYPE_CHECKING:
    from trustusbank.scenario.changes import ActError, ResetReport, Swap

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True, highlight=False)

SIGNATURE_NOTES = {
    "org": "[green]org[/] (verifies with the org public key)",
    "untrusted": "[bold red]untrusted[/] (signed, but does not verify with the org public key)",
    "unsigned": "[red]unsigned[/]",
}


def _short(digest: str | None) -> str:
    return f"{digest[:19]}…" if digest else "(none)"


def _render_swap(swap: Swap) -> None:
    if swap.pushed:
        out.print(f"image  {swap.tag}")
        out.print(
            f"  {_short(swap.old_digest)} ({swap.old_variant or '-'}) → [bold]{_short(swap.new_digest)}[/]"
            f" ({swap.variant})"
        )
    else:
        out.print(f"image  {swap.tag} already {_short(swap.new_digest)} ({swap.variant})")
    note = SIGNATURE_NOTES.get(swap.signature, swap.signature)
    out.print(f"  signed by {swap.signer or 'nobody'}; signature {note}")
    for r in swap.restarted:
        pod, pids = r.pod.partition("/")[2], f"pid {r.old_pid} → {r.new_pid}"
        out.print(f"rollout restart {r.deployment}: pod {pod} ready in {r.seconds:.1f}s ({pids})")
    if not swap.restarted:
        out.print(f"rollout restart {swap.deployment}: not needed, the pod already runs this digest")


def _fail(exc: ActError) -> None:
    if exc.swap is not None:
        _render_swap(exc.swap)
    err.print(f"[red]error:[/] {exc}")
    if exc.log_tail:
        err.print("last log lines of the pod:")
        err.print(exc.log_tail, markup=False)
    raise typer.Exit(1)


def upgrade_banking_app(
    variant: Annotated[
        str,
        typer.Option(
            help=f"The converter build to push under its tag: {', '.join(RUG_PULLS)} (rug pulls) or {CLEAN}."
        ),
    ] = DEFAULT_RUG_PULL,
    as_json: Annotated[bool, typer.Option("--json", help="Print what happened as JSON.")] = False,
    k8s: K8s = False,
    context: K8sContext = None,
) -> None:
    """Rug-pull the currency converter: new bytes behind the same image tag, the pod restarted onto them.

    The Deployment and the registry's catalogue are not touched; only the digest behind
    localhost:5001/acme-fx/currency-converter:1.0.0 changes. `trustusbank reset` undoes it."""
    if k8s:
        from trustusbank.cli import k8s_story

        if variant not in (*RUG_PULLS, CLEAN):
            raise typer.BadParameter(f"one of {', '.join((*RUG_PULLS, CLEAN))}", param_hint="--variant")
        driver = k8s_story.driver(context, lambda line: err.print(f"[dim]{line}[/]", highlight=False))
        with err.status(f"upgrading the banking app on {driver.where}") as spinner:
            image = asyncio.run(driver.upgrade(variant, spinner.update))
        if as_json:
            typer.echo(json.dumps({"cluster": driver.where, "converter": image.to_dict()}, indent=2))
            return
        moved = "pushed and restarted" if image.pushed else "already running"
        out.print(f"{image.tag} @ {image.digest[:19]}… (build {image.build}, {moved})")
        return
    from trustusbank.cluster.layout import ClusterFiles
    from trustusbank.paths import state_dir
    from trustusbank.scenario.changes import ActError, upgrade

    files = ClusterFiles(state_dir())
    try:
        with err.status("upgrading the banking app") as spinner:
            swap = asyncio.run(upgrade(files, variant, progress=spinner.update))
    except ActError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(swap.to_dict(), indent=2))
        return
    _render_swap(swap)


def _render_reset(report: ResetReport) -> None:
    for step in report.steps:
        mark = "[yellow]changed[/]" if step.changed else "[green]unchanged[/]"
        out.print(f"{step.name:<17} {mark}  {step.detail}")
    for r in report.converter.restarted:
        out.print(f"{'':<17} rollout restart: pod {r.pod.partition('/')[2]} ready in {r.seconds:.1f}s")
    for r in report.bank_restarted:
        out.print(f"{'':<17} rollout restart: pod {r.pod.partition('/')[2]} ready in {r.seconds:.1f}s")
    out.print("baseline restored" if report.changed else "already at the baseline: nothing to do")


def _reset_k8s(as_json: bool, context: str | None) -> None:
    from trustusbank.cli import k8s_story  # Kubernetes mode is imported only when asked for

    driver = k8s_story.driver(context, lambda line: err.print(f"[dim]{line}[/]", highlight=False))
    with err.status(f"resetting {driver.where}") as spinner:
        image = asyncio.run(driver.baseline(spinner.update))
    if as_json:
        typer.echo(json.dumps({"cluster": driver.where, "converter": image.to_dict()}, indent=2))
        return
    pushed = "pushed and restarted" if image.pushed else "already running"
    out.print(f"converter         {image.tag} @ {image.digest[:19]}… (clean build, {pushed})")
    out.print("defence policies  removed (deploy/08-defence)")
    out.print("bank data         MCP servers restarted onto their seed data")
    out.print("attacker view     reset; what it received is kept")


def reset_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print what happened as JSON.")] = False,
    k8s: K8s = False,
    context: K8sContext = None,
) -> None:
    """Back to the baseline (Act 1): clean converter build, no defence policies, the bank's seed data,
    the attacker's view reset.

    Evidence, counters and what the attacker received are kept. Safe to run again."""
    if k8s:
        _reset_k8s(as_json, context)
        return
    from trustusbank.cluster.layout import ClusterFiles
    from trustusbank.paths import state_dir
    from trustusbank.scenario.changes import ActError, reset

    files = ClusterFiles(state_dir())
    try:
        with err.status("resetting") as spinner:
            report = asyncio.run(reset(files, progress=spinner.update))
    except ActError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    _render_reset(report)
