"""`trustusbank k8s …`: the same deploy/ on a real cluster (kind, or a context of yours)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from trustusbank.images.converter_builds import DEFAULT_RUG_PULL

# Planning renders deploy/ (YAML, every kind's schema and CEL rules): Kubernetes mode loads in the
# commands below, when one runs, so `--help` stays light.
if TYPE_CHECKING:
    from trustusbank.k8s.plan import Options

app = typer.Typer(
    help="A real Kubernetes cluster: Istio ambient, agentgateway, kagent and deploy/ (kind or your context).",
    no_args_is_help=True,
)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True)

Kind = Annotated[
    bool, typer.Option("--kind", help="Create (or, for down, delete) the kind cluster `trustusbank`.")
]
Context = Annotated[
    str | None, typer.Option("--context", help="The kubeconfig context to use (default: current).")
]


def _say(line: str) -> None:
    out.print(line, markup=False)
    sys.stdout.flush()


def _options(kind: bool, context: str | None, licence: Path | None = None) -> Options:
    from trustusbank.k8s.lifecycle import workdir_of
    from trustusbank.k8s.plan import Options
    from trustusbank.paths import deploy_dir, state_dir

    return Options(deploy_dir(), workdir_of(state_dir()), kind=kind, context=context, license_file=licence)


@app.command()
def up(
    kind: Kind = False,
    context: Context = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the whole plan; run nothing.")] = False,
    licence: Annotated[
        Path | None,
        typer.Option(
            "--license", help="A Solo Enterprise licence key file: the write-up's Enterprise charts."
        ),
    ] = None,
    port_forwards: Annotated[bool, typer.Option(help="Open the write-up's ports when done.")] = True,
) -> None:
    """Install everything (phases 01–09) and apply deploy/ phase by phase; safe to re-run."""
    from trustusbank.cli.k8s_story import remember_context
    from trustusbank.k8s import forwards, runner
    from trustusbank.k8s.plan import image_plan, image_steps, install_plan

    if licence is not None and not licence.is_file():
        raise typer.BadParameter(f"no such licence file: {licence}", param_hint="--license")
    options = _options(kind, context, licence)
    plan = install_plan(options, image_steps(image_plan(options)))
    if dry_run:
        runner.describe(plan, _say)
        for f in forwards.FORWARDS:
            _say(f"then: http://127.0.0.1:{f.local}  {f.what}  ({f.namespace}/{f.target})")
        return
    runner.run(plan, _say)
    remember_context(options.workdir, options.kube_context)  # what `demo --k8s` & co. talk to
    if port_forwards:
        for entry in forwards.start(options.workdir, options.kube_context):
            if entry["busy"]:
                err.print(
                    f"[red]port {entry['local']} is taken by another process: {entry['what']} is not "
                    f"forwarded[/] (free it, then `trustusbank k8s up` again)"
                )
            else:
                _say(f"http://127.0.0.1:{entry['local']}  {entry['what']}  (pid {entry['pid']})")


@app.command()
def status(kind: Kind = False, context: Context = None) -> None:
    """Nodes, the mesh, the bank's pods, the policies in force and the port-forwards."""
    from trustusbank.k8s import forwards, runner
    from trustusbank.k8s.lifecycle import status_plan

    options = _options(kind, context)
    runner.run(status_plan(options), _say)
    for entry in forwards.recorded(options.workdir):
        pid = entry.get("pid")
        state = (
            "port taken"
            if entry.get("busy")
            else "running"
            if isinstance(pid, int) and forwards.alive(pid)
            else "stopped"
        )
        _say(f"port-forward 127.0.0.1:{entry['local']} → {entry['namespace']}/{entry['target']}: {state}")


@app.command()
def down(kind: Kind = False, context: Context = None) -> None:
    """Remove what `up` applied (your cluster keeps Istio & co.); with --kind, delete the cluster."""
    from trustusbank.k8s import forwards, runner
    from trustusbank.k8s.lifecycle import down_plan

    options = _options(kind, context)
    stopped = forwards.stop(options.workdir)
    _say(f"stopped {stopped} port-forward(s)")
    runner.run(down_plan(options), _say)


@app.command()
def policies(
    state: Annotated[str, typer.Argument(help="on or off")], kind: Kind = False, context: Context = None
) -> None:
    """Apply or remove the defence set (deploy/08-defence) on the cluster."""
    if state not in ("on", "off"):
        raise typer.BadParameter("say on or off", param_hint="STATE")
    from trustusbank.k8s import runner
    from trustusbank.k8s.lifecycle import policies_plan

    plan = policies_plan(_options(kind, context), state == "on")
    runner.run(plan, _say)
    for item in plan.left_out:
        _say(f"not on a cluster: {item}")


@app.command()
def build(kind: Kind = False, context: Context = None) -> None:
    """Build the one workload image and push every tag deploy/ names to the local registry."""
    from trustusbank.k8s import runner
    from trustusbank.k8s.plan import Plan, image_plan, image_steps

    runner.run(Plan(image_steps(image_plan(_options(kind, context)))), _say)


@app.command("upgrade-banking-app")
def upgrade_banking_app(
    kind: Kind = False,
    context: Context = None,
    variant: Annotated[str, typer.Option(help="The rug-pulled build to push.")] = DEFAULT_RUG_PULL,
) -> None:
    """The rug pull on the cluster: new bytes under the converter's same tag, its Deployment restarted."""
    from trustusbank.k8s import runner
    from trustusbank.k8s.image import CONVERTER_BUILDS
    from trustusbank.k8s.plan import Kube, Plan, image_plan, rug_pull_steps

    builds = [b for b in CONVERTER_BUILDS if b != "clean"]
    if variant not in builds:
        raise typer.BadParameter(f"one of {', '.join(builds)}", param_hint="--variant")
    options = _options(kind, context)
    runner.run(Plan(rug_pull_steps(Kube(options.kube_context), image_plan(options), variant)), _say)
