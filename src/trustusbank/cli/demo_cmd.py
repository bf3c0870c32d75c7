"""`trustusbank demo [NAME]` and `trustusbank act N`: the three acts (the README's main command), and
the runbook's follow-on demos, on the embedded cluster; with `--k8s`, the acts on a real cluster."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from trustusbank.cli.isolation_view import render_isolation
from trustusbank.cli.k8s_options import K8s, K8sContext
from trustusbank.scenario.followup_names import FOLLOW_UPS

# The scenarios drive the whole system (the HTTP client, the runtime, the agents' wire formats):
# they load in the functions below, when a demo runs, so `--help` stays light.
if TYPE_CHECKING:
    from trustusbank.scenario.acts import DemoRecord
    from trustusbank.scenario.cluster import Cluster
    from trustusbank.scenario.followups import FollowUp
    from trustusbank.scenario.receipts import Deny
    from trustusbank.scenario.verdict import ActRecord

out = Console()
err = Console(stderr=True, soft_wrap=True)


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chain(act: ActRecord) -> str:
    from trustusbank.scenario.verdict import LEAK_ARGUMENT

    names = []
    for call in act.chain:
        name = call.name
        if LEAK_ARGUMENT in call.arguments:
            name = f"[bold red]{name}({LEAK_ARGUMENT}=…)[/]"
        elif call.is_error:
            name = f"[red]{name} ✗[/]"
        names.append(name)
    return " → ".join(names) or "—"


def _deny(deny: Deny) -> str:
    image = f" image {deny.image}@{(deny.digest or '')[:19]}…" if deny.image else ""
    return f"{deny.source_identity} → {deny.destination_identity or '?'} ({deny.policy}){image}"


def _render_act(act: ActRecord) -> None:
    mark = "[green]✓[/]" if act.ok else "[red]✗[/]"
    out.print(f"[bold]{act.title}[/]  {mark} {act.verdict}")
    if act.image is not None:
        image = act.image
        out.print(
            f"  image     {image.tag} @ {image.digest[:19]}… "
            f"(build {image.build}, signed by {image.signature})"
        )
    out.print(f"  customer  {_short(act.reply)}")
    out.print(f"  tools     {_chain(act)}")
    colour = "red" if act.new_exfil else "green"
    out.print(f"  attacker  {act.exfil_before} → [{colour}]{act.exfil_after}[/] (+{act.new_exfil})")
    denies = [_deny(d) for d in act.denies[:3]]
    more = f" (+{len(act.denies) - 3} more)" if len(act.denies) > 3 else ""
    out.print(f"  denies    {('; '.join(denies) + more) if denies else 'none'}")
    alerts = sorted(act.alert_names)
    out.print(f"  alerts    {', '.join(alerts) if alerts else 'none'}")
    out.print(f"  [dim]{act.seconds:.1f} s[/]\n")


def _render(record: DemoRecord) -> None:
    out.print(f"[dim]customer prompt:[/] {record.prompt}\n")
    for act in record.acts:
        _render_act(act)
    if record.evidence is not None:
        verified = "[green]intact[/]" if record.evidence.verified else "[red]BROKEN[/]"
        out.print(
            f"evidence  {record.evidence.records} records, hash chain {verified}, "
            f"head {record.evidence.head[:16]}…  (trustusbank evidence report --dora)"
        )
    if record.ok:
        out.print(
            "[bold]verdict:[/] the model was fooled in Acts 2 and 3 alike; the runtime made the difference. "
            f"({record.seconds:.1f} s)"
        )


def _isolation(cluster: Cluster) -> dict[str, Any]:
    """The running cluster's isolation mode, as its supervisor decided it."""
    from trustusbank.runtime import control

    return dict((control.read_status(cluster.files) or {}).get("isolation") or {})


class _Lines:
    """Progress where no spinner can be drawn (a file, a pipe, CI): one line per step, at once."""

    def __init__(self, first: str) -> None:
        self.last = ""
        self.update(first)

    def update(self, message: str) -> None:
        if message != self.last:
            err.print(f"… {message}", highlight=False)
            self.last = message

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(first: str) -> Any:
    """A spinner on a terminal; otherwise lines, so long work is never silent."""
    return err.status(first) if err.is_terminal else _Lines(first)


def _cluster(quiet: bool, start: bool = True) -> Cluster:
    from trustusbank.cluster.layout import ClusterFiles
    from trustusbank.paths import state_dir
    from trustusbank.runtime import control
    from trustusbank.scenario.cluster import ensure_running

    if not start and control.running_pid(ClusterFiles(state_dir())) is None:
        err.print("[red]error:[/] no cluster is running from this state dir; `trustusbank up --detach` first")
        raise typer.Exit(1)
    with _progress("checking the embedded cluster") as status:
        return ensure_running(state_dir(), lambda m: status.update(m) if not quiet else None)


def _finish(cluster: Cluster, keep: bool) -> None:
    sys.stdout.flush()  # what was printed comes before what is said next, in a file as on a screen
    if cluster.started_here and not keep:
        with _progress("stopping the cluster this demo started"):
            cluster.stop(lambda _: None)
        err.print("[dim]cluster stopped; `trustusbank up` keeps one running to explore[/]")


def _run_follow_up(name: str, as_json: bool, keep: bool) -> None:
    from trustusbank.scenario.followups import runner

    cluster = _cluster(as_json)
    isolation = _isolation(cluster)
    try:
        with _progress(f"demo {name}") as status:
            result: FollowUp = asyncio.run(runner(name)(cluster, lambda m: status.update(m)))
    except BaseException:
        _finish(cluster, keep)
        raise
    if as_json:
        out.print_json(json.dumps({**dataclasses.asdict(result), "isolation": isolation}))
    else:
        render_isolation(out, isolation)
        for line in result.lines:
            out.print(line)
        mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
        out.print(f"{mark} {result.summary}")
    _finish(cluster, keep)
    if not result.ok:
        for problem in result.problems:
            err.print(f"[red]unexpected:[/] {problem}")
        raise typer.Exit(1)


def _run_acts(acts: tuple[int, ...], as_json: bool, keep: bool, start: bool = True) -> None:
    from trustusbank.scenario.acts import run_acts
    from trustusbank.scenario.drivers.embedded import EmbeddedDriver

    cluster = _cluster(as_json, start)
    isolation = _isolation(cluster)
    try:
        with _progress("running the acts") as status:
            record = asyncio.run(run_acts(EmbeddedDriver(cluster), lambda m: status.update(m), acts))
    except BaseException:
        _finish(cluster, keep)
        raise
    if as_json:
        out.print_json(json.dumps({**record.to_dict(), "isolation": isolation}))
    else:
        render_isolation(out, isolation)
        _render(record)
    _finish(cluster, keep)
    if not record.ok:
        for problem in record.problems:
            err.print(f"[red]unexpected:[/] {problem}")
        raise typer.Exit(1)


def _run_acts_k8s(acts: tuple[int, ...], as_json: bool, context: str | None) -> None:
    from trustusbank.cli import k8s_story  # Kubernetes mode is imported only when asked for
    from trustusbank.scenario.acts import run_acts

    with _progress("connecting to the Kubernetes cluster") as status:
        driver = k8s_story.driver(context, lambda line: err.print(f"[dim]{line}[/]", highlight=False))
        status.update(f"running the acts on {driver.where}")
        record = asyncio.run(run_acts(driver, lambda m: status.update(m), acts))
    if as_json:
        out.print_json(json.dumps({**record.to_dict(), "cluster": driver.where}))
    else:
        out.print(f"[dim]on {driver.where}[/]")
        _render(record)
    if not record.ok:
        for problem in record.problems:
            err.print(f"[red]unexpected:[/] {problem}")
        raise typer.Exit(1)


def demo(
    name: Annotated[
        str | None,
        typer.Argument(help=f"A follow-on demo: {', '.join(FOLLOW_UPS)}. Without one: the three acts."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave a cluster this demo started running afterwards.")
    ] = False,
    k8s: K8s = False,
    context: K8sContext = None,
) -> None:
    """The supply-chain attack in three acts, with receipts; exit 0 only when the story holds."""
    if name is not None and name not in FOLLOW_UPS:
        err.print(f"[red]error:[/] no demo {name!r}; choose one of: {', '.join(FOLLOW_UPS)}")
        raise typer.Exit(2)
    if k8s:
        if name is not None:
            err.print(f"[red]error:[/] the follow-on demos run on the embedded cluster only; `demo {name}`")
            raise typer.Exit(2)
        _run_acts_k8s((1, 2, 3), as_json, context)
        return
    if name is None:
        _run_acts((1, 2, 3), as_json, keep)
        return
    _run_follow_up(name, as_json, keep)


def act(
    number: Annotated[
        int, typer.Argument(help="1 clean, 2 rug pull, 3 rug pull with defence.", min=1, max=3)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    k8s: K8s = False,
    context: K8sContext = None,
) -> None:
    """Run one act: make its change to the running system, ask the seed's question, show the receipts."""
    if k8s:
        _run_acts_k8s((number,), as_json, context)
        return
    _run_acts((number,), as_json, keep=True, start=False)
