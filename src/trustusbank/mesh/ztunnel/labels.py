"""Istio's standard metric labels for one connection, from what the node proxy knows."""

from __future__ import annotations

from trustusbank.runtime.topology import Pod, ServiceEntry

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
