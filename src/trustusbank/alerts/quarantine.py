"""The quarantine an alert proposes: AuthorizationPolicies that cut one identity off, ready to apply.

Two policies, both enforced by ztunnel at L4 on the proven SPIFFE identity:
- in the root namespace (mesh-wide), DENY every connection *from* the identity, so
  whatever it was talked into, it reaches nothing in the mesh (the attacker's
  namespace is enrolled, so that includes the attacker);
- in its own namespace, DENY-all *to* its pods (a rule that matches everything),
  so no agent can call the compromised tool meanwhile. DENY is evaluated before
  any ALLOW, so the namespace's allow rules cannot let traffic around it.

The file name is `quarantine-<namespace>-<serviceaccount>.yaml`, the `offender`
label the alert rules compute, so the command in the alert's annotation
(`trustusbank apply -f quarantine-<offender>.yaml`) names the file written here.
`trustusbank delete -f` the same file lifts it.

The offender is the workload whose identity opened the connection (the alert's
`source_principal`). Mesh infrastructure is never proposed for quarantine: a
waypoint (its pods' service accounts in the topology, or the platform's
agentgateway) or a node proxy / control plane identity (the root namespace).
Cutting those off would cut off every workload behind them; `assess` says so
instead, and `proposal` is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trustusbank.cluster.topology import Topology
from trustusbank.manifests.istio.objects import ROOT_NAMESPACE
from trustusbank.mesh.identity.spiffe import SCHEME, SpiffeId

SOURCE_LABEL = "source_principal"


def offender(labels: Mapping[str, str]) -> SpiffeId | None:
    """The identity an alert is about: its `source_principal`, with or without the spiffe:// scheme."""
    raw = labels.get(SOURCE_LABEL, "")
    try:
        return SpiffeId.parse(raw if raw.startswith(SCHEME) else SCHEME + raw)
    except ValueError:
        return None


# The platform's waypoint (Gateway `trustusbank-agentgw`, whose proxy runs as the service account of
# the same name): known even when no topology is at hand.
KNOWN_WAYPOINTS = frozenset({("trustusbank-platform", "trustusbank-agentgw")})


def infrastructure(identity: SpiffeId, topology: Topology | None = None) -> str | None:
    """What `identity` is if it is mesh infrastructure ("waypoint ...", "node proxy ..."), else None."""
    if identity.namespace == ROOT_NAMESPACE:
        return f"a node proxy or control-plane identity of {ROOT_NAMESPACE}"
    pair = (identity.namespace, identity.service_account)
    if topology is not None:
        for pod in topology.pods:
            if pod.role == "waypoint" and (pod.namespace, pod.service_account) == pair:
                return f"the waypoint {pod.namespace}/{pod.gateway or pod.deployment}"
    if pair in KNOWN_WAYPOINTS:
        return f"the waypoint {identity.namespace}/{identity.service_account}"
    return None


@dataclass(frozen=True)
class Assessment:
    """Who an alert is about, and whether that identity may be quarantined."""

    identity: SpiffeId | None  # the source identity, if it is one this mesh issues
    infrastructure: str | None = None  # what it is, when it is mesh infrastructure

    @property
    def proposal(self) -> SpiffeId | None:
        """The identity to quarantine: the source workload's, never infrastructure's."""
        return self.identity if self.infrastructure is None else None


def assess(labels: Mapping[str, str], topology: Topology | None = None) -> Assessment:
    identity = offender(labels)
    if identity is None:
        return Assessment(None)
    return Assessment(identity, infrastructure(identity, topology))


def file_name(identity: SpiffeId) -> str:
    return f"quarantine-{identity.namespace}-{identity.service_account}.yaml"


def _selector(identity: SpiffeId, topology: Topology | None) -> dict[str, str] | None:
    """Labels that select exactly the pods running as `identity` in its namespace (None if unknown)."""
    if topology is None:
        return None
    namespace = [p for p in topology.pods if p.namespace == identity.namespace]
    mine = [p for p in namespace if p.service_account == identity.service_account]
    if not mine:
        return None
    labels = mine[0].labels
    app = labels.get("app")
    if app is not None:
        chosen = [p for p in namespace if p.labels.get("app") == app]
        if all(p.service_account == identity.service_account for p in chosen):
            return {"app": app}
    common = {k: v for k, v in labels.items() if all(p.labels.get(k) == v for p in mine)}
    others = [p for p in namespace if p.service_account != identity.service_account]
    if common and not any(all(p.labels.get(k) == v for k, v in common.items()) for p in others):
        return common
    return None


def manifests(identity: SpiffeId, topology: Topology | None, reason: str) -> list[dict[str, Any]]:
    name = f"quarantine-{identity.namespace}-{identity.service_account}"
    labels = {"app.kubernetes.io/managed-by": "trustusbank-alerts", "trustusbank.io/quarantine": "true"}
    annotations = {"trustusbank.io/reason": reason, "trustusbank.io/identity": identity.uri}
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {
                "name": name,
                "namespace": ROOT_NAMESPACE,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {
                "action": "DENY",
                "rules": [{"from": [{"source": {"principals": [identity.principal]}}]}],
            },
        }
    ]
    selector = _selector(identity, topology)
    if selector is not None:
        docs.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {
                    "name": f"quarantine-{identity.service_account}",
                    "namespace": identity.namespace,
                    "labels": labels,
                    "annotations": annotations,
                },
                "spec": {"selector": {"matchLabels": selector}, "action": "DENY", "rules": [{}]},
            }
        )
    return docs


def write(directory: Path, identity: SpiffeId, topology: Topology | None, reason: str) -> Path:
    """Write (or rewrite) the quarantine file for `identity`; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name(identity)
    header = (
        f"# Quarantine of {identity.uri} ({reason}).\n"
        f"# Apply: trustusbank apply -f {path}   (on a cluster: kubectl apply -f {path.name})\n"
        f"# Lift:  trustusbank delete -f {path}\n"
    )
    text = header + yaml.safe_dump_all(manifests(identity, topology, reason), sort_keys=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
