"""`k8s up` as a plan: the write-up's phases, each a step of real commands, in the order they must run.

01 the kind cluster and its local registry (with `--kind`); 02 Gateway API CRDs and Istio
ambient by Helm (base, istiod, cni, ztunnel); 03 the observability stack
(kube-prometheus-stack, Loki, Tempo, mailpit); 04 the images; 05 agentgateway's
controller; 06 kagent; then deploy/, namespaces first and each phase folder in order, waiting
for every Deployment's rollout and every Agent's readiness before the next. Every command is
idempotent (`helm upgrade --install`, `kubectl apply`) or has a check that skips it when its
work is done (`kind create cluster`, the registry container), so a re-run changes nothing.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trustusbank.k8s import values
from trustusbank.k8s import versions as v
from trustusbank.k8s.image import CONVERTER, ENGINES, ImagePlan
from trustusbank.k8s.render import Phase, render
from trustusbank.k8s.steps import Check, Command, Step, cmd
from trustusbank.k8s.values import OBSERVABILITY_NS

ROLLOUT_TIMEOUT = "300s"
HELM_TIMEOUT = "10m"
ISTIO_NS = "istio-system"
AGENTGATEWAY_NS = "agentgateway-system"
KAGENT_NS = "kagent"
REGISTRY_DIR = "/etc/containerd/certs.d/localhost:5001"
NODES = ("control-plane", "worker", "worker2")


@dataclass(frozen=True)
class Options:
    deploy: Path
    workdir: Path  # where rendered files go: <state>/k8s
    kind: bool = False
    context: str | None = None
    license_file: Path | None = None  # Enterprise charts only with a licence; OSS otherwise

    @property
    def kube_context(self) -> str | None:
        return f"kind-{v.KIND_CLUSTER}" if self.kind and self.context is None else self.context

    @property
    def enterprise(self) -> bool:
        return self.license_file is not None


@dataclass
class Plan:
    steps: list[Step]
    files: dict[Path, str] = field(default_factory=dict)  # written before the first step
    left_out: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


class Kube:
    """kubectl and helm, pointed at one context."""

    def __init__(self, context: str | None) -> None:
        self.context = context

    def kubectl(self, *args: str, stdin: str | None = None) -> Command:
        return cmd("kubectl", *(("--context", self.context) if self.context else ()), *args, stdin=stdin)

    def rollout_status(self, namespace: str, name: str) -> Command:
        return self.kubectl(
            "rollout",
            "status",
            f"deployment/{name}",
            "--namespace",
            namespace,
            f"--timeout={ROLLOUT_TIMEOUT}",
        )

    def helm(self, *args: str) -> Command:
        return cmd("helm", *(("--kube-context", self.context) if self.context else ()), *args)

    def release(self, name: str, chart: str, namespace: str, version: str, *values: str) -> Step:
        return Step(
            "",
            f"helm release {name} ({chart} {version})",
            (
                self.helm(
                    "upgrade",
                    "--install",
                    name,
                    chart,
                    "--namespace",
                    namespace,
                    "--create-namespace",
                    "--version",
                    version,
                    "--wait",
                    "--timeout",
                    HELM_TIMEOUT,
                    *values,
                ),
            ),
            diagnose=(
                self.helm("status", name, "--namespace", namespace),
                self.kubectl("get", "events", "--namespace", namespace, "--sort-by=.lastTimestamp"),
            ),
        )


def _phase(number: str, steps: list[Step]) -> list[Step]:
    return [dataclasses.replace(s, phase=number) for s in steps]


def _kind(kube: Kube, options: Options) -> tuple[list[Step], dict[Path, str]]:
    config = options.workdir / "kind-config.yaml"
    nodes = [{"role": "control-plane"}, {"role": "worker"}, {"role": "worker"}]
    text = yaml.safe_dump({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": nodes})
    name = v.KIND_CLUSTER
    registry = v.REGISTRY_CONTAINER
    hosts = f'[host."http://{registry}:5000"]\n'
    hosting = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
            "data": {"localRegistryHosting.v1": 'host: "localhost:5001"\n'},
        }
    )
    steps = [
        Step(
            "",
            f"kind cluster {name} (control plane + 2 workers, {v.KIND_NODE_IMAGE})",
            (
                cmd(
                    "kind",
                    "create",
                    "cluster",
                    "--name",
                    name,
                    "--image",
                    v.KIND_NODE_IMAGE,
                    "--config",
                    str(config),
                ),
            ),
            done_if=Check(("kind", "get", "clusters"), name),
        ),
        Step(
            "",
            f"local registry {registry} on 127.0.0.1:5001",
            (
                cmd(
                    "docker",
                    "run",
                    "--detach",
                    "--restart=always",
                    "--publish",
                    "127.0.0.1:5001:5000",
                    "--network",
                    "bridge",
                    "--name",
                    registry,
                    v.REGISTRY_IMAGE,
                ),
            ),
            done_if=Check(("docker", "inspect", "--format", "{{.State.Running}}", registry), "true"),
        ),
        Step(
            "",
            f"{registry} on the kind network",
            (cmd("docker", "network", "connect", "kind", registry),),
            done_if=Check(
                (
                    "docker",
                    "network",
                    "inspect",
                    "kind",
                    "--format",
                    "{{range .Containers}}{{.Name}} {{end}}",
                ),
                registry,
            ),
        ),
        Step(
            "",
            "containerd on every node pulls localhost:5001 from the registry",
            tuple(
                cmd(
                    "docker",
                    "exec",
                    "--interactive",
                    f"{name}-{node}",
                    "sh",
                    "-c",
                    f"mkdir -p {REGISTRY_DIR} && cat > {REGISTRY_DIR}/hosts.toml",
                    stdin=hosts,
                )
                for node in NODES
            ),
        ),
        Step(
            "",
            "advertise the registry (kube-public/local-registry-hosting)",
            (kube.kubectl("apply", "-f", "-", stdin=hosting),),
        ),
    ]
    return _phase("01", steps), {config: text}


def _mesh(kube: Kube) -> list[Step]:
    repo = Step(
        "", "Helm repository istio", (cmd("helm", "repo", "add", "istio", v.ISTIO_CHARTS, "--force-update"),)
    )
    crds = Step(
        "",
        f"Gateway API CRDs {v.GATEWAY_API}",
        (kube.kubectl("apply", "--server-side", "-f", v.GATEWAY_API_CRDS),),
    )
    ambient = ("--set", "profile=ambient")
    return _phase(
        "02",
        [
            crds,
            repo,
            kube.release("istio-base", "istio/base", ISTIO_NS, v.ISTIO),
            kube.release("istiod", "istio/istiod", ISTIO_NS, v.ISTIO, *ambient),
            kube.release("istio-cni", "istio/cni", ISTIO_NS, v.ISTIO, *ambient),
            kube.release("ztunnel", "istio/ztunnel", ISTIO_NS, v.ISTIO),
        ],
    )


def _observability(kube: Kube, options: Options) -> tuple[list[Step], dict[Path, str]]:
    files = {
        chart: (options.workdir / f"{chart}.values.yaml", yaml.safe_dump(make(), sort_keys=False))
        for chart, make in (
            ("kube-prometheus-stack", values.kube_prometheus_stack),
            ("loki", values.loki),
            ("tempo", values.tempo),
        )
    }

    def using(chart: str) -> tuple[str, str]:
        return "--values", str(files[chart][0])

    repos = Step(
        "",
        "Helm repositories prometheus-community, grafana-community, jouve",
        (
            cmd("helm", "repo", "add", "prometheus-community", v.PROMETHEUS_CHARTS, "--force-update"),
            cmd("helm", "repo", "add", "grafana-community", v.GRAFANA_CHARTS, "--force-update"),
            cmd("helm", "repo", "add", "jouve", v.MAILPIT_CHARTS, "--force-update"),
        ),
    )
    ns = OBSERVABILITY_NS
    steps = [
        repos,
        kube.release("mailpit", "jouve/mailpit", ns, v.MAILPIT),
        kube.release(
            "kube-prometheus-stack",
            "prometheus-community/kube-prometheus-stack",
            ns,
            v.KUBE_PROMETHEUS_STACK,
            *using("kube-prometheus-stack"),
        ),
        kube.release("loki", "grafana-community/loki", ns, v.LOKI, *using("loki")),
        kube.release("tempo", "grafana-community/tempo", ns, v.TEMPO, *using("tempo")),
    ]
    return _phase("03", steps), dict(files.values())


def _gateway_and_agents(kube: Kube, options: Options) -> tuple[list[Step], dict[Path, str]]:
    """OSS by default: agentgateway's own controller (the OSS control plane that applies
    AgentgatewayPolicy) and kagent OSS. With a licence: the write-up's Enterprise charts."""
    if not options.enterprise:
        agw, kagent = v.AGENTGATEWAY_CHARTS, v.KAGENT_CHARTS
        return [
            *_phase(
                "05",
                [
                    kube.release(
                        "agentgateway-crds", f"{agw}/agentgateway-crds", AGENTGATEWAY_NS, v.AGENTGATEWAY
                    ),
                    kube.release("agentgateway", f"{agw}/agentgateway", AGENTGATEWAY_NS, v.AGENTGATEWAY),
                ],
            ),
            *_phase(
                "06",
                [
                    kube.release("kagent-crds", f"{kagent}/kagent-crds", KAGENT_NS, v.KAGENT),
                    kube.release("kagent", f"{kagent}/kagent", KAGENT_NS, v.KAGENT),
                ],
            ),
        ], {}
    assert options.license_file is not None
    licence = options.workdir / "enterprise-licence.values.yaml"  # a file, so the key is in no argv
    key = options.license_file.read_text(encoding="utf-8").strip()
    text = yaml.safe_dump({"licensing": {"licenseKey": key}})
    agw, kagent = v.ENTERPRISE_AGENTGATEWAY_CHARTS, v.KAGENT_ENTERPRISE_CHARTS
    with_licence = ("--values", str(licence))
    return [
        *_phase(
            "05",
            [
                kube.release(
                    "enterprise-agentgateway-crds",
                    f"{agw}/enterprise-agentgateway-crds",
                    AGENTGATEWAY_NS,
                    v.ENTERPRISE_AGENTGATEWAY,
                ),
                kube.release(
                    "enterprise-agentgateway",
                    f"{agw}/enterprise-agentgateway",
                    AGENTGATEWAY_NS,
                    v.ENTERPRISE_AGENTGATEWAY,
                    *with_licence,
                ),
            ],
        ),
        *_phase(
            "06",
            [
                kube.release(
                    "kagent-enterprise-crds",
                    f"{kagent}/kagent-enterprise-crds",
                    KAGENT_NS,
                    v.KAGENT_ENTERPRISE,
                ),
                kube.release(
                    "kagent-enterprise",
                    f"{kagent}/kagent-enterprise",
                    KAGENT_NS,
                    v.KAGENT_ENTERPRISE,
                    *with_licence,
                ),
            ],
        ),
    ], {licence: text}


def _apply(kube: Kube, phase: Phase, path: Path) -> Step:
    waits = [kube.rollout_status(ns, name) for ns, name in phase.deployments] + [
        kube.kubectl(
            "wait",
            "--for=condition=Ready",
            f"agents.kagent.dev/{name}",
            "--namespace",
            ns,
            f"--timeout={ROLLOUT_TIMEOUT}",
        )
        for ns, name in phase.agents
    ]
    namespaces = sorted({ns for ns, _ in [*phase.deployments, *phase.agents]})
    diagnose = [
        kube.kubectl("get", "events", "--namespace", ns, "--sort-by=.lastTimestamp") for ns in namespaces
    ]
    diagnose += [
        kube.kubectl("logs", f"deployment/{name}", "--namespace", ns, "--all-containers", "--tail=40")
        for ns, name in [*phase.deployments, *phase.agents]
    ]
    return Step(
        "08",
        f"apply deploy/{phase.name}" + (f", then wait for {len(waits)} rollout(s)" if waits else ""),
        (kube.kubectl("apply", "-f", str(path)), *waits),
        diagnose=tuple(diagnose),
    )


def _namespaces_first(phases: list[Phase]) -> list[Phase]:
    first = Phase("00-namespaces")
    for phase in phases:
        first.documents += [d for d in phase.documents if d.get("kind") == "Namespace"]
        phase.documents = [d for d in phase.documents if d.get("kind") != "Namespace"]
    return [first, *(p for p in phases if p.documents)]


def _engine() -> str:
    """docker, else podman; docker when neither is here (the tool check then names it)."""
    return next((e for e in ENGINES if shutil.which(e)), ENGINES[0])


def image_plan(options: Options) -> ImagePlan:
    """The one image, built from the checkout deploy/ belongs to, tagged as deploy/ names it."""
    return ImagePlan.from_deploy(options.deploy, options.deploy.resolve().parent, _engine())


def image_steps(images: ImagePlan) -> list[Step]:
    commands = images.build_commands()
    builds = tuple(Command(tuple(c)) for c in commands if c[1] == "build")
    pushes = tuple(Command(tuple(c)) for c in commands if c[1] == "push")
    return _phase(
        "04",
        [
            Step("", f"build the workload image ({len(images.tags)} tags, {images.engine})", builds),
            Step("", f"push to {v.REGISTRY}", pushes),
        ],
    )


def rug_pull_steps(kube: Kube, images: ImagePlan, build: str) -> list[Step]:
    """The write-up's `upgrade-banking-app`: new bytes under the same tag, the Deployment restarted.

    With the clean build it is `reset`'s first step: the vendor's honest bytes back under the tag."""
    converter = [ref.split("/", 1) for t in images.tags if t.workload == CONVERTER for ref in t.deployments]
    restart = [
        kube.kubectl("rollout", "restart", f"deployment/{n}", "--namespace", ns) for ns, n in converter
    ]
    status = [kube.rollout_status(ns, name) for ns, name in converter]
    return [
        Step(
            "",
            f"push the {build} converter build under the same tag",
            tuple(Command(tuple(c)) for c in images.converter_commands(build)),
        ),
        Step("", "restart the converter onto the new bytes", (*restart, *status)),
    ]


def install_plan(options: Options, images: list[Step] | None = None) -> Plan:
    """Everything `k8s up` does, in order; `images` are the build/push steps (phase 04)."""
    kube = Kube(options.kube_context)
    plan = Plan([])
    if options.kind:
        steps, files = _kind(kube, options)
        plan.steps += steps
        plan.files.update(files)
    plan.steps += _mesh(kube)
    steps, files = _observability(kube, options)
    plan.steps += steps
    plan.files.update(files)
    plan.steps += _phase("04", images or [])
    steps, files = _gateway_and_agents(kube, options)
    plan.steps += steps
    plan.files.update(files)
    phases = _namespaces_first(render(options.deploy, enterprise=options.enterprise))
    for phase in phases:
        path = options.workdir / "rendered" / f"{phase.name}.yaml"
        plan.files[path] = phase.text()
        plan.steps.append(_apply(kube, phase, path))
        plan.left_out += phase.left_out
        plan.added += phase.added
    return plan
