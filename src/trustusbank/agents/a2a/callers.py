"""Who is calling: the peer address of an inbound connection, mapped to a workload identity.

In ambient mode the destination's ztunnel verifies the caller's SPIFFE certificate over
HBONE and then connects to the pod *from the caller pod's own IP*, so the address an
app sees is the address of a workload whose identity the mesh has already proven. Our
embedded ztunnel does the same, and the topology says which pod holds which address,
so the agent can turn a peer IP back into `cluster.local/ns/<ns>/sa/<sa>` without
holding any key itself.

This is an app-level check on an L4 fact. On a real cluster kagent Enterprise enforces
AccessPolicy in the namespace's waypoint (agentgateway), which sees the identity from
the HBONE certificate directly; a call that reaches the agent through a waypoint
arrives from the waypoint's address there. The decision logic (`access_guard`) is the
same either way; only where the identity comes from differs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trustusbank.cluster.topology import Topology

# peer IP -> SPIFFE principal "cluster.local/ns/<ns>/sa/<sa>", or None when nobody is known there
CallerResolver = Callable[[str], str | None]

log = logging.getLogger(__name__)


def principal(trust_domain: str, namespace: str, service_account: str) -> str:
    """An Istio-style principal: the SPIFFE ID without its `spiffe://` scheme."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def no_callers(_: str) -> str | None:
    """The resolver when no topology is known: nobody has an identity (enforcement then denies)."""
    return None


@dataclass
class _Snapshot:
    stamp: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) of the file it was read from
    topology: Topology | None = None


def topology_resolver(path: Path) -> CallerResolver:
    """Resolve peers from the topology file, re-read whenever it changes; unreadable = nobody known."""
    snapshot = _Snapshot()

    def current() -> Topology | None:
        try:
            stat = path.stat()
        except OSError as exc:
            if snapshot.stamp is not None or snapshot.topology is not None:
                log.warning("topology %s is gone (%s): no caller has an identity", path, exc)
            snapshot.stamp, snapshot.topology = None, None
            return None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != snapshot.stamp:
            snapshot.stamp = stamp
            try:
                snapshot.topology = Topology.load(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("topology %s is unreadable (%s): no caller has an identity", path, exc)
                snapshot.topology = None
        return snapshot.topology

    def resolve(ip: str) -> str | None:
        topology = current()
        if topology is None:
            return None
        pod = topology.pod_by_ip(ip)
        if pod is None:
            return None
        return principal(topology.trust_domain, pod.namespace, pod.service_account)

    return resolve
