"""deploy/ as a real cluster gets it: phase by phase, with what only the embedded runtime needs left out.

The same files, with these differences, each said in the plan (and the local registry's images
pulled `Always`, so a push under the same tag reaches the next pod):
- the defence set (08-defence) is not installed: the story starts without it, and
  `k8s policies on` applies it, as `policies on` does on the embedded cluster;
- the alert evaluator and the SOC inbox are the embedded runtime's stand-ins for
  Prometheus/Alertmanager and a mail sink; on a cluster kube-prometheus-stack loads the same
  PrometheusRule and mailpit receives the mail;
- on OSS, the waypoint Gateway uses agentgateway's own class (`agentgateway`; the Enterprise
  class is kept when a licence is given), and kagent's AccessPolicy, an Enterprise CRD, is
  not applied (there is nothing on OSS to read it): the same rules go in as the Istio DENY
  policies `manifests oss-access` renders (`manifests/kagent/oss.py`), which ztunnel enforces;
- Grafana's DORA evidence dashboard (`k8s/grafana.py`) is added, as a ConfigMap applied with
  the PrometheusRule whose alerts it shows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trustusbank.cluster.layout import DEFENCE_DIR
from trustusbank.k8s import grafana, versions
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.kagent import oss
from trustusbank.manifests.kagent.objects import Index
from trustusbank.manifests.manifest import ManifestError, Problem
from trustusbank.manifests.yaml_source import read_documents, yaml_files

EMBEDDED_OBSERVABILITY_NS = "trustusbank-observability"
# The embedded runtime's stand-ins, by (namespace, name) of their Deployment/Service/ServiceAccount.
EMBEDDED_ONLY = {
    ("trustusbank-observability", "alert-evaluator"): "kube-prometheus-stack runs the PrometheusRule",
    ("trustusbank-observability", "soc-inbox"): "mailpit is the SOC inbox",
}
ENTERPRISE_ONLY_KINDS = {
    "AccessPolicy": f"kagent Enterprise only; ztunnel DENY policies instead (`{oss.RENDER_COMMAND}`)"
}
WAYPOINT_FOR = "istio.io/waypoint-for"


@dataclass
class Phase:
    """One deploy/ folder as applied, with what to wait for after it."""

    name: str  # "05-mcp-servers"
    documents: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # "<Kind> <ns>/<name>: why"
    added: list[str] = field(default_factory=list)  # what a cluster gets beside deploy/'s, same form

    @property
    def deployments(self) -> list[tuple[str, str]]:
        return [_ref(d) for d in self.documents if d.get("kind") == "Deployment"]

    @property
    def agents(self) -> list[tuple[str, str]]:
        return [_ref(d) for d in self.documents if d.get("kind") == "Agent"]

    def text(self) -> str:
        return yaml.safe_dump_all(self.documents, sort_keys=False)


def _ref(document: dict[str, Any]) -> tuple[str, str]:
    meta = document.get("metadata") or {}
    return str(meta.get("namespace", "default")), str(meta.get("name", ""))


def _leave_out(document: dict[str, Any], enterprise: bool) -> str | None:
    kind = str(document.get("kind"))
    if kind in ("Deployment", "Service", "ServiceAccount") and _ref(document) in EMBEDDED_ONLY:
        return EMBEDDED_ONLY[_ref(document)]
    if kind in ENTERPRISE_ONLY_KINDS and not enterprise:
        return ENTERPRISE_ONLY_KINDS[kind]
    return None


def _for_cluster(document: dict[str, Any], enterprise: bool) -> dict[str, Any]:
    out = copy.deepcopy(document)
    if out.get("kind") == "Deployment":
        # The rug pull pushes new bytes under the same tag: kubelet pulls them only with Always (the
        # embedded runtime resolves the tag at every pod start, which is the same thing).
        pod = out.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            if str(container.get("image", "")).startswith(f"{versions.REGISTRY}/"):
                container["imagePullPolicy"] = "Always"
    if out.get("kind") == "Gateway" and not enterprise:
        spec = out.setdefault("spec", {})
        if spec.get("gatewayClassName") == versions.AGENTGATEWAY_ENTERPRISE_CLASS:
            spec["gatewayClassName"] = versions.AGENTGATEWAY_OSS_CLASS
            labels = out.setdefault("metadata", {}).setdefault("labels", {})
            labels.setdefault(WAYPOINT_FOR, "service")
    return out


# On a cluster the agents' /metrics are scraped by kube-prometheus-stack's Prometheus.
PROMETHEUS = "cluster.local/ns/trustusbank-observability/sa/kube-prometheus-stack-prometheus"


def _oss_access(deploy: Path) -> list[dict[str, Any]]:
    """The AccessPolicies as ztunnel DENY policies, for a cluster without kagent Enterprise."""
    return oss.authorization_policies(Index.of(load_bundle(deploy).objects), (PROMETHEUS,))


def _phase(folder: Path, enterprise: bool, problems: list[Problem]) -> Phase:
    phase = Phase(folder.name)
    for file in yaml_files(folder):
        documents, found = read_documents(file)
        problems += found
        for document in documents:
            why = _leave_out(document.data, enterprise)
            if why is not None:
                namespace, name = _ref(document.data)
                phase.left_out.append(f"{document.data.get('kind')} {namespace}/{name}: {why}")
                continue
            phase.documents.append(_for_cluster(document.data, enterprise))
    return phase


def render(deploy: Path, *, enterprise: bool = False) -> list[Phase]:
    """deploy/'s phase folders in order, each as the documents a cluster gets."""
    phases: list[Phase] = []
    problems: list[Problem] = []
    for folder in sorted(p for p in deploy.iterdir() if p.is_dir() and p.name[:2].isdigit()):
        if folder.name == DEFENCE_DIR:
            continue
        phase = _phase(folder, enterprise, problems)
        if not enterprise and any(item.startswith("AccessPolicy ") for item in phase.left_out):
            phase.documents += _oss_access(deploy)
        phases.append(phase)
    if problems:
        raise ManifestError(problems)
    _add_dashboard(phases)
    return phases


# The embedded stand-ins' identities, and who plays their part on a cluster.
STAND_IN_PRINCIPALS = {"cluster.local/ns/trustusbank-observability/sa/alert-evaluator": PROMETHEUS}
OBSERVABILITY_POLICY = (
    "on a cluster this namespace holds kube-prometheus-stack, Loki, Tempo and mailpit, whose own traffic "
    "(Prometheus to Alertmanager to mailpit, Grafana to its data sources) these policies do not describe: "
    "a default-deny here would stop the alert mail"
)


def _principals(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _principals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_principals(v) for v in value]
    return STAND_IN_PRINCIPALS.get(value, value) if isinstance(value, str) else value


def render_defence(deploy: Path) -> Phase:
    """The defence set (08-defence) as `k8s policies on` applies it: the stand-ins' identities replaced
    by the components that do their job on a cluster, and the observability namespace's policies left
    out (said in `left_out`)."""
    problems: list[Problem] = []
    phase = _phase(deploy / DEFENCE_DIR, False, problems)
    if problems:
        raise ManifestError(problems)
    kept = []
    for document in phase.documents:
        namespace, name = _ref(document)
        if namespace == EMBEDDED_OBSERVABILITY_NS:
            phase.left_out.append(f"{document.get('kind')} {namespace}/{name}: {OBSERVABILITY_POLICY}")
            continue
        kept.append(_principals(document))
    phase.documents = kept
    return phase


def _add_dashboard(phases: list[Phase]) -> None:
    """The dashboard goes with the alert rules it shows (the last phase when there are none)."""
    if not phases:
        return  # nothing is applied at all
    home = next(
        (p for p in reversed(phases) if any(d.get("kind") == "PrometheusRule" for d in p.documents)),
        phases[-1],
    )
    dashboard = grafana.config_map()
    namespace, name = _ref(dashboard)
    home.documents.append(dashboard)
    home.added.append(f"ConfigMap {namespace}/{name}: {grafana.WHY}")
