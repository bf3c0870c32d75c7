"""`k8s status`, `k8s down` and `k8s policies on|off` as plans of kubectl/kind commands.

`down` removes what `up` put there and nothing else: on your own cluster the deploy/ objects
(in reverse phase order); Istio, agentgateway, kagent and the observability stack stay, since
other workloads may use them. With `--kind` the whole kind cluster and its registry go.
"""

from __future__ import annotations

from pathlib import Path

from trustusbank.cluster.layout import DEFENCE_DIR
from trustusbank.k8s import versions as v
from trustusbank.k8s.plan import Kube, Options, Plan, install_plan
from trustusbank.k8s.render import render_defence
from trustusbank.k8s.steps import Step, cmd

OUR_NAMESPACES = (
    "trustusbank-platform",
    "trustusbank-bank-frontend",
    "trustusbank-bank-agents",
    "trustusbank-bank-mcp",
    "trustusbank-bank-vendors",
    "trustusbank-observability",
    "external-fx",
    "external-attacker",
)


def status_plan(options: Options) -> Plan:
    kube = Kube(options.kube_context)
    return Plan(
        [
            Step("", "nodes", (kube.kubectl("get", "nodes", "--output=wide"),)),
            Step("", "mesh", (kube.kubectl("get", "pods", "--namespace", "istio-system"),)),
            Step(
                "",
                "the bank's pods",
                tuple(
                    kube.kubectl("get", "pods", "--namespace", ns, "--output=wide") for ns in OUR_NAMESPACES
                ),
            ),
            Step("", "defence policies", (kube.kubectl("get", "authorizationpolicies", "--all-namespaces"),)),
        ]
    )


def down_plan(options: Options) -> Plan:
    if options.kind:
        name, registry = v.KIND_CLUSTER, v.REGISTRY_CONTAINER
        return Plan(
            [
                Step(
                    "",
                    f"delete kind cluster {name}",
                    (cmd("kind", "delete", "cluster", "--name", name),),
                ),
                Step(
                    "",
                    f"remove the registry container {registry}",
                    (cmd("docker", "rm", "--force", registry),),
                ),
            ]
        )
    kube = Kube(options.kube_context)
    installed = install_plan(options)
    rendered = sorted((p for p in installed.files if p.parent.name == "rendered"), reverse=True)
    return Plan(
        [
            Step(
                "",
                f"delete the deploy/ objects ({path.stem})",
                (kube.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", str(path)),),
            )
            for path in rendered
        ],
        files={path: installed.files[path] for path in rendered},  # what to delete, nothing else
    )


def policies_plan(options: Options, on: bool) -> Plan:
    """The defence set, as `policies on|off` applies it on the embedded cluster (rendered for a cluster)."""
    kube = Kube(options.kube_context)
    defence = render_defence(options.deploy)
    path = options.workdir / "rendered" / f"{DEFENCE_DIR}.yaml"
    verb = ("apply", "-f", str(path)) if on else ("delete", "--ignore-not-found", "-f", str(path))
    step = Step("", f"defence set {'on' if on else 'off'} ({DEFENCE_DIR})", (kube.kubectl(*verb),))
    return Plan([step], files={path: defence.text()}, left_out=defence.left_out)


def workdir_of(state: Path) -> Path:
    return state / "k8s"
