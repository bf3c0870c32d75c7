"""One node's proxy: the listeners it owns for its pods, and the glue between them.

Per local pod, as real ztunnel does inside each pod's network namespace:
- 15001 outbound capture (SOCKS5 here, iptables there). Given the pod's network
  namespace (the namespaces mode), the listener is made *inside* it at
  127.0.0.1:15001, so only that pod can reach it and every connection on it is
  that pod's; otherwise it is on the pod IP of the shared loopback (cooperative);
- 15008 HBONE inbound (mTLS with the pod's SVID, then AuthorizationPolicy),
- each container port: plaintext inbound, refused when PeerAuthentication is STRICT.
Plus :15020 on the node address for /metrics and /healthz/ready. When the policy
set changes, open inbound connections are judged again and the ones no longer
allowed are closed (ztunnel's PolicyWatcher).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from pathlib import Path

import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.ports import HBONE_PORT, IN_POD_CAPTURE, METRICS_PORT, OUTBOUND_PORT
from trustusbank.cluster.topology import Pod, Topology
from trustusbank.http_server import uvicorn_config
from trustusbank.kernel.netns import NetworkNamespace
from trustusbank.mesh.identity.istiod import CsrClient
from trustusbank.mesh.identity.secrets import SecretManager
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.ztunnel.access_log import AccessLog
from trustusbank.mesh.ztunnel.inbound import Inbound
from trustusbank.mesh.ztunnel.metrics import ZtunnelMetrics
from trustusbank.mesh.ztunnel.outbound import Outbound
from trustusbank.mesh.ztunnel.policy_store import PolicyStore
from trustusbank.periodic import every
from trustusbank.telemetry.admin import control_app
from trustusbank.telemetry.tracing import setup_tracing

log = logging.getLogger(__name__)


class NodeProxy:
    def __init__(
        self,
        files: ClusterFiles,
        node: str,
        deploy: Path,
        namespaces: dict[str, NetworkNamespace] | None = None,
    ) -> None:
        self.files = files
        self.node = node
        self.namespaces = namespaces or {}  # pod ref -> its network namespace (as istio-cni hands it)
        self.topology = Topology.load(files.topology)
        self.policies = PolicyStore(deploy, files)
        self.access = AccessLog(files.access_log(node), node)
        self.metrics = ZtunnelMetrics()
        self.tracer_provider: TracerProvider = setup_tracing(
            "ztunnel", files.traces / f"ztunnel-{node}.jsonl", {"k8s.node.name": node}, self.metrics.registry
        )
        tracer = self.tracer_provider.get_tracer("trustusbank.ztunnel")
        token = (files.node_dir(node) / "token").read_text().strip()
        self.secrets = SecretManager(
            signer=CsrClient(files.istiod_socket, node, token),
            trust_bundle_pem=files.trust_bundle.read_bytes(),
            directory=files.node_dir(node) / "certs",
        )
        self.outbound = Outbound(self, tracer)
        self.inbound = Inbound(self, tracer)
        self.servers: list[asyncio.AbstractServer] = []
        self.ready = False

    def identity(self, pod: Pod) -> SpiffeId:
        return SpiffeId(self.topology.trust_domain, pod.namespace, pod.service_account)

    def captured_pods(self) -> list[Pod]:
        out = []
        for pod in self.topology.pods_on(self.node):
            ns = self.topology.namespaces.get(pod.namespace)
            if ns and ns.ambient and pod.role == "workload":
                out.append(pod)
        return out

    async def _listen(self, pod: Pod) -> None:
        identity = self.identity(pod)
        await self.secrets.get(identity)
        outbound = functools.partial(self.outbound.handle, pod)
        netns = self.namespaces.get(pod.ref)
        if netns is not None:
            listener = netns.listener(IN_POD_CAPTURE, OUTBOUND_PORT)
            self.servers.append(await asyncio.start_server(outbound, sock=listener))
        else:
            self.servers.append(await asyncio.start_server(outbound, pod.ip, OUTBOUND_PORT))
        self.servers.append(await self.inbound.serve_hbone(pod, identity, HBONE_PORT))
        for port in pod.ports:
            plaintext = functools.partial(self.inbound.plaintext, pod, port.port)
            self.servers.append(await asyncio.start_server(plaintext, pod.ip, port.port))

    def _control_app(self) -> Starlette:
        return control_app(self.metrics.registry, lambda: self.ready)

    def reload_policies(self) -> None:
        """Pick up a changed policy set, then hold every open inbound connection to it.

        As ztunnel's PolicyWatcher does: a connection admitted under the old set
        and denied under the new one is closed, not left to run until its peer
        hangs up. Nothing is re-checked when nothing changed.
        """
        if not self.policies.reload_if_changed():
            return
        closed = self.inbound.recheck()
        if closed:
            log.info("closed %d connection(s) no longer allowed after a policy update", closed)

    async def _rotate(self) -> None:
        for identity in await self.secrets.rotate_due():  # a failure keeps the current certs
            log.info("rotated the certificate of %s", identity)

    async def run(self) -> None:
        self.policies.reload_if_changed()
        node = self.topology.node(self.node)
        config = uvicorn_config(self._control_app(), host=node.ip, port=METRICS_PORT, log_level="warning")
        control = uvicorn.Server(config)
        control_task = asyncio.create_task(control.serve())
        try:
            for pod in self.captured_pods():
                await self._listen(pod)
            self.ready = True
            log.info("ztunnel on %s ready for %d pods", self.node, len(self.captured_pods()))
            await asyncio.gather(
                every(1.0, self.reload_policies, "policy reload"),
                every(1.0, self._rotate, "certificate rotation"),
            )
        finally:
            for server in self.servers:
                server.close()
            await self.outbound.close()  # the pooled HBONE connections, each ended with a GOAWAY
            control.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await control_task
            self.tracer_provider.shutdown()
