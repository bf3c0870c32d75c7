"""Istio's standard metric labels for one connection, from what the node proxy knows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustusbank.cluster.topology import Pod, ServiceEntry

if TYPE_CHECKING:
    from trustusbank.cluster.discovery import Destination

UNKNOWN = "unknown"


def peer_labels(
    reporter: str,
    source: Pod | None,
    source_principal: str | None,
    destination: Pod | None,
    destination_principal: str | None,
    service: ServiceEntry | None,
    mutual_tls: bool,
) -> dict[str, str]:
    return {
        "reporter": reporter,
        "source_workload": source.deployment if source else UNKNOWN,
        "source_workload_namespace": source.namespace if source else UNKNOWN,
        "source_principal": source_principal or UNKNOWN,
        "destination_workload": destination.deployment if destination else UNKNOWN,
        "destination_workload_namespace": destination.namespace if destination else UNKNOWN,
        "destination_principal": destination_principal or UNKNOWN,
        "destination_service": service.fqdn if service else UNKNOWN,
        "connection_security_policy": "mutual_tls" if mutual_tls else "none",
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
