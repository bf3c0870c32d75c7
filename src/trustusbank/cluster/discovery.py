"""Where a captured connection should go, decided from the cluster's workloads and Services.

Names are resolved here, not by the pod: `<svc>.<ns>.svc.cluster.local`
exists only inside the mesh, as it exists only in cluster DNS on Kubernetes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from trustusbank.cluster.ports import METRICS_PORT
from trustusbank.cluster.topology import Pod, ServiceEntry, Topology
from trustusbank.errors import UnavailableError


class Unresolvable(UnavailableError, LookupError):
    """No workload answers to that name or address."""


@dataclass(frozen=True)
class Destination:
    host: str
    port: int
    pod: Pod | None = None
    service: ServiceEntry | None = None
    captured: bool = False  # the destination is in the mesh: go over HBONE
    waypoint: str | None = None

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _in_mesh(topology: Topology, pod: Pod) -> bool:
    ns = topology.namespaces.get(pod.namespace)
    return bool(ns and ns.ambient)


def _to_pod(topology: Topology, pod: Pod, port: int, service: ServiceEntry | None = None) -> Destination:
    captured = _in_mesh(topology, pod)
    host = pod.ip if captured else pod.app_ip
    waypoint = service.waypoint if service else None
    return Destination(host, port, pod, service, captured, waypoint)


def _admin_port(topology: Topology, host: str, port: int) -> bool:
    """A node proxy's or waypoint's :15020 (metrics, readiness): uncaptured, as ztunnel's own pod is."""
    if port != METRICS_PORT:
        return False
    waypoint = topology.pod_by_ip(host)
    return any(n.ip == host for n in topology.nodes) or bool(waypoint and waypoint.role == "waypoint")


def _loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    return _is_ip(host) and ipaddress.ip_address(host).is_loopback


def resolve(topology: Topology, host: str, port: int, client_namespace: str) -> Destination:
    if _admin_port(topology, host, port):
        return Destination(host, port)  # plain TCP to the component's admin listener
    if _is_ip(host):
        pod = topology.pod_by_ip(host)
        if pod is not None:
            return _to_pod(topology, pod, port)
        if topology.in_cluster(host):
            raise Unresolvable(f"no workload has address {host}")
    if _loopback(host):
        # A pod's loopback is its own; the node's is not the pod's to reach through its capture.
        raise Unresolvable(f"{host} is loopback: not reachable through the mesh")
    if _is_ip(host):
        return Destination(host, port)  # outside the cluster: passthrough
    service = topology.service(host, client_namespace)
    if service is None:
        if host.lower().rstrip(".").endswith(".cluster.local") or "." not in host:
            raise Unresolvable(f"no Service named {host}")
        return Destination(host, port)  # an external name: passthrough, as ztunnel does
    svc_port = next((p for p in service.ports if p.port == port), None)
    if svc_port is None:
        raise Unresolvable(f"Service {service.fqdn} has no port {port}")
    for name in service.pods:
        pod = topology.pod(f"{service.namespace}/{name}")
        target = pod.target_port(svc_port.target_port) if pod else None
        if pod is not None and target is not None:
            return _to_pod(topology, pod, target, service)
    raise Unresolvable(f"Service {service.fqdn} has no endpoint for port {port}")
