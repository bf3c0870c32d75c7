"""The cluster's shape: nodes, pods and Services, with their addresses.

It is the embedded control plane's single answer to "what runs where": the
supervisor writes it, every ztunnel reads it (as real ztunnels get workloads
from istiod), and `status` prints it.

Addresses: a cluster owns one loopback /16, 127.B.0.0. Node N's pods get
127.B.N.k (the pod IP, owned by that node's ztunnel, as iptables would give it
the pod's traffic) and the app inside the pod listens on 127.B.N.(k+128), an
address nobody is told about: the pod's private network namespace, emulated.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustusbank.cluster.ports import HBONE_PORT

if TYPE_CHECKING:  # only `plan` reads manifests; a reader of topology.json (`ask`, `status`) never does
    from trustusbank.manifests.bundle import Bundle
    from trustusbank.manifests.core import Deployment, Service
    from trustusbank.manifests.manifest import Manifest

CLUSTER = "trustusbank"
NODES = (
    ("trustusbank-control-plane", "control-plane"),
    ("trustusbank-worker", "worker"),
    ("trustusbank-worker2", "worker"),
)
FIRST_POD = 10
APP_OFFSET = 128


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    index: int
    ip: str


@dataclass(frozen=True)
class PodPort:
    name: str
    port: int


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    deployment: str
    service_account: str
    labels: dict[str, str]
    node: str
    ip: str
    app_ip: str
    ports: list[PodPort]
    image: str
    # "workload", or "waypoint" for a Gateway's proxy: not captured by ztunnel,
    # it terminates HBONE itself, as real waypoints do.
    role: str = "workload"
    gateway: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def spiffe_uri(self, trust_domain: str) -> str:
        return f"spiffe://{trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    def target_port(self, port: int | str) -> int | None:
        """A Service targetPort (number or name) as this pod's port number."""
        if isinstance(port, int):
            return port if any(p.port == port for p in self.ports) else None
        return next((p.port for p in self.ports if p.name == port), None)


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    namespace: str
    ports: list[ServicePort]
    pods: list[str]
    waypoint: str | None

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class NamespaceEntry:
    name: str
    ambient: bool
    use_waypoint: str | None


@dataclass
class Topology:
    subnet: int
    trust_domain: str = "cluster.local"
    nodes: list[Node] = field(default_factory=list)
    namespaces: dict[str, NamespaceEntry] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    services: list[ServiceEntry] = field(default_factory=list)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def pod(self, ref: str) -> Pod | None:
        return next((p for p in self.pods if p.ref == ref or p.name == ref), None)

    def pod_by_ip(self, ip: str) -> Pod | None:
        return next((p for p in self.pods if p.ip == ip), None)

    def pods_on(self, node: str) -> list[Pod]:
        return [p for p in self.pods if p.node == node]

    def waypoint(self, ref: str) -> Pod | None:
        """The proxy pod of a waypoint Gateway, by `<namespace>/<gateway>`."""
        return next((p for p in self.pods if p.role == "waypoint" and p.gateway == ref), None)

    def in_cluster(self, ip: str) -> bool:
        return ip.startswith(f"127.{self.subnet}.")

    def service(self, host: str, client_namespace: str) -> ServiceEntry | None:
        """Resolve a DNS name as a pod's resolver would, search domains included."""
        name = host.lower().rstrip(".")
        for suffix in (".svc.cluster.local", ".svc"):
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
                break
        svc, _, namespace = name.partition(".")
        namespace = namespace or client_namespace
        if "." in namespace:
            return None
        return next((s for s in self.services if (s.name, s.namespace) == (svc, namespace)), None)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Topology:
        raw: dict[str, Any] = json.loads(path.read_text())
        return cls(
            subnet=raw["subnet"],
            trust_domain=raw["trust_domain"],
            nodes=[Node(**n) for n in raw["nodes"]],
            namespaces={k: NamespaceEntry(**v) for k, v in raw["namespaces"].items()},
            pods=[Pod(**{**p, "ports": [PodPort(**x) for x in p["ports"]]}) for p in raw["pods"]],
            services=[
                ServiceEntry(**{**s, "ports": [ServicePort(**x) for x in s["ports"]]})
                for s in raw["services"]
            ],
        )


def _worker_for(deployment: Deployment, workers: list[Node]) -> Node:
    """Stable placement: the same Deployment lands on the same node every time."""
    return workers[zlib.crc32(f"{deployment.namespace}/{deployment.name}".encode()) % len(workers)]


def plan(bundle: Bundle, subnet: int) -> Topology:
    """Place every Deployment's pods on the workers (the control plane is tainted, as in kind)."""
    nodes = [Node(name, role, i, f"127.{subnet}.{i}.1") for i, (name, role) in enumerate(NODES)]
    workers = [n for n in nodes if n.role == "worker"]
    topo = Topology(subnet=subnet, nodes=nodes)
    for ns in bundle.namespaces():
        topo.namespaces[ns.name] = NamespaceEntry(ns.name, ns.ambient, ns.use_waypoint)
    next_host = {n.name: FIRST_POD for n in nodes}
    for dep in sorted(bundle.deployments(), key=lambda d: (d.namespace, d.name)):
        node = _worker_for(dep, workers)
        for replica in range(dep.replicas):
            k = next_host[node.name]
            if k >= APP_OFFSET:
                raise ValueError(f"node {node.name} has no pod addresses left")
            next_host[node.name] = k + 1
            container = dep.containers[0]
            topo.pods.append(
                Pod(
                    name=f"{dep.name}-{replica}",
                    namespace=dep.namespace,
                    deployment=dep.name,
                    service_account=dep.service_account,
                    labels=dict(dep.pod_labels),
                    node=node.name,
                    ip=f"127.{subnet}.{node.index}.{k}",
                    app_ip=f"127.{subnet}.{node.index}.{k + APP_OFFSET}",
                    ports=[PodPort(p.name or "", p.container_port) for c in dep.containers for p in c.ports],
                    image=container.image or "",
                )
            )
    for svc in bundle.services():
        topo.services.append(_service_entry(bundle, svc, topo))
    for gateway in _waypoint_gateways(bundle):
        _add_waypoint(topo, gateway, workers, next_host)
    return topo


def _waypoint_gateways(bundle: Bundle) -> list[Manifest]:
    from trustusbank.manifests.gateway.schema import AGENTGATEWAY_CLASSES

    return sorted(
        (
            m
            for m in bundle.objects
            if m.kind == "Gateway" and m.body["spec"]["gatewayClassName"] in AGENTGATEWAY_CLASSES
        ),
        key=lambda m: (m.namespace or "", m.name),
    )


def _add_waypoint(topo: Topology, gateway: Manifest, workers: list[Node], next_host: dict[str, int]) -> None:
    """What the agentgateway controller makes of a Gateway: a proxy pod and a Service, named after it."""
    namespace = gateway.namespace or "default"
    node = workers[zlib.crc32(f"{namespace}/{gateway.name}".encode()) % len(workers)]
    k = next_host[node.name]
    next_host[node.name] = k + 1
    ports = [PodPort("mesh", HBONE_PORT)] + [
        PodPort(str(listener["name"]), int(listener["port"]))
        for listener in gateway.body["spec"]["listeners"]
        if int(listener["port"]) != HBONE_PORT
    ]
    topo.pods.append(
        Pod(
            name=f"{gateway.name}-0",
            namespace=namespace,
            deployment=gateway.name,
            service_account=gateway.name,
            labels={"gateway.networking.k8s.io/gateway-name": gateway.name},
            node=node.name,
            ip=f"127.{topo.subnet}.{node.index}.{k}",
            app_ip=f"127.{topo.subnet}.{node.index}.{k + APP_OFFSET}",
            ports=ports,
            image="agentgateway",
            role="waypoint",
            gateway=f"{namespace}/{gateway.name}",
        )
    )
    service_ports = [ServicePort(p.name, p.port, p.port) for p in ports]
    topo.services.append(ServiceEntry(gateway.name, namespace, service_ports, [f"{gateway.name}-0"], None))


def _service_entry(bundle: Bundle, svc: Service, topo: Topology) -> ServiceEntry:
    deployments = {(d.namespace, d.name) for d in bundle.deployment_for(svc)}
    pods = [p.name for p in topo.pods if (p.namespace, p.deployment) in deployments]
    ns = topo.namespaces.get(svc.namespace)
    waypoint = svc.manifest.labels.get("istio.io/use-waypoint") or (ns.use_waypoint if ns else None)
    if waypoint == "none" or waypoint == svc.name:
        waypoint = None  # a waypoint's own Service is never sent to itself
    ports = [ServicePort(p.name or "", p.port, p.target_port) for p in svc.ports]
    return ServiceEntry(
        svc.name, svc.namespace, ports, pods, f"{svc.namespace}/{waypoint}" if waypoint else None
    )
