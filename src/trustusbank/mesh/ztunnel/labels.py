"""Istio's standard metric labels for one connection, from what the node proxy knows.

The names and fallbacks are ztunnel's `CommonTrafficLabels` (src/proxy/metrics.rs), so a
query written against a real cluster's ztunnel reads ours alike: anything not known is
"unknown"; the source principal is only the identity proven by mTLS (never a workload's
claimed one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustusbank.cluster.topology import Pod, ServiceEntry

if TYPE_CHECKING:
    from trustusbank.cluster.discovery import Destination

UNKNOWN = "unknown"
CLUSTER_ID = "Kubernetes"  # istiod's default cluster id, what a single cluster reports
_CANONICAL_NAME = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
_CANONICAL_REVISION = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")


def canonical_service(pod: Pod) -> str:
    return next((pod.labels[k] for k in _CANONICAL_NAME if pod.labels.get(k)), pod.deployment)


def canonical_revision(pod: Pod) -> str:
    return next((pod.labels[k] for k in _CANONICAL_REVISION if pod.labels.get(k)), "latest")


def _workload(side: str, pod: Pod | None, principal: str | None) -> dict[str, str]:
    name = canonical_service(pod) if pod else UNKNOWN
    revision = canonical_revision(pod) if pod else UNKNOWN
    return {
        f"{side}_workload": pod.deployment if pod else UNKNOWN,
        f"{side}_canonical_service": name,
        f"{side}_canonical_revision": revision,
        f"{side}_workload_namespace": pod.namespace if pod else UNKNOWN,
        f"{side}_principal": principal or UNKNOWN,
        f"{side}_app": name,
        f"{side}_version": revision,
        f"{side}_cluster": CLUSTER_ID if pod else UNKNOWN,
    }


def peer_labels(
    reporter: str,
    source: Pod | None,
    source_principal: str | None,
    destination: Pod | None,
    destination_principal: str | None,
    service: ServiceEntry | None,
    mutual_tls: bool,
) -> dict[str, str]:
    """The labels of every `istio_tcp_*` series of one connection, `response_flags` "-" (as opened)."""
    return {
        "reporter": reporter,
        **_workload("source", source, source_principal),
        "destination_service": service.fqdn if service else UNKNOWN,
        "destination_service_namespace": service.namespace if service else UNKNOWN,
        "destination_service_name": service.name if service else UNKNOWN,
        **_workload("destination", destination, destination_principal),
        "request_protocol": "tcp",
        "response_flags": "-",
        "connection_security_policy": "mutual_tls" if mutual_tls else UNKNOWN,
        # Locality: ztunnel adds these once it knows either workload (always, here); no zones here.
        **{f"{side}_{key}": UNKNOWN for side in ("source", "destination") for key in ("region", "zone")},
    }


def attempt_labels(
    source_workload: str | None, source_namespace: str | None, source_principal: str | None, dest: Destination
) -> dict[str, str]:
    """Who tried to reach what: the intended destination (the Service's pod, not a waypoint in between)."""
    return {
        "source_workload": source_workload or UNKNOWN,
        "source_workload_namespace": source_namespace or UNKNOWN,
        "source_principal": source_principal or UNKNOWN,
        "destination_workload": dest.pod.deployment if dest.pod else UNKNOWN,
        "destination_workload_namespace": dest.pod.namespace if dest.pod else UNKNOWN,
        "destination_service_name": dest.service.name if dest.service else UNKNOWN,
        "destination_service_namespace": dest.service.namespace if dest.service else UNKNOWN,
    }
