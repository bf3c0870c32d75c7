"""istiod as a process of its own (`trustusbank mesh istiod`), as it is a pod in istio-system.

Everything it needs is in the state directory, so a restarted istiod is the same istiod:
the root CA in `cluster/ca` (created on first start, reused after: same trust bundle,
so SVIDs issued before a crash still verify), the node proxies' and waypoints' tokens
the supervisor wrote at `up`, and the topology that says which identities each may hold.
The CA's private key lives in this process only, never in the supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from pathlib import Path

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Topology
from trustusbank.mesh.identity.ca import CertificateAuthority
from trustusbank.mesh.identity.istiod import WAYPOINT_PREFIX, Istiod

log = logging.getLogger(__name__)


def caller_token_files(files: ClusterFiles, topo: Topology) -> dict[str, Path]:
    """Where each node proxy's and waypoint's token is: the supervisor writes them, istiod reads them."""
    paths = {node.name: files.node_dir(node.name) / "token" for node in topo.nodes}
    for pod in topo.pods:
        if pod.gateway is not None:
            paths[WAYPOINT_PREFIX + pod.gateway] = files.waypoint_dir(pod.gateway) / "token"
    return paths


def caller_tokens(files: ClusterFiles, topo: Topology) -> dict[str, str]:
    """The token of every node proxy and waypoint of the topology, as the supervisor issued them.

    A caller whose token file is missing gets no entry, so its requests are refused."""
    tokens = {}
    for caller, path in caller_token_files(files, topo).items():
        try:
            tokens[caller] = path.read_text().strip()
        except OSError as exc:
            log.error("no token for %s, its requests will be refused: %s", caller, exc)
    return tokens


def publish_trust_bundle(files: ClusterFiles, ca: CertificateAuthority) -> None:
    """The root certificate where node proxies read it, replaced whole (never seen half-written)."""
    tmp = files.trust_bundle.with_name(f".{files.trust_bundle.name}.{os.getpid()}.tmp")
    tmp.write_bytes(ca.trust_bundle_pem)
    tmp.replace(files.trust_bundle)


async def serve(files: ClusterFiles, ttl: timedelta) -> None:
    """Load the CA, the tokens and the topology, then sign CSRs until cancelled."""
    ca = CertificateAuthority.load_or_create(files.ca)
    publish_trust_bundle(files, ca)
    topo = Topology.load(files.topology)
    istiod = Istiod(ca, lambda: topo, caller_tokens(files, topo), ttl)
    server = await istiod.serve(files.istiod_socket)
    log.info("istiod serving on %s for %d callers", files.istiod_socket, len(istiod.tokens))
    async with server:
        await asyncio.Event().wait()  # until SIGTERM cancels the task
