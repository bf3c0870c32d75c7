"""One waypoint process: its SVID, its HBONE listener, its proxy, its live configuration.

A changed policy or route file takes effect within a second without a restart;
one that does not load is refused and the last good configuration stays
(`config_store.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import httpcore
import uvicorn
from starlette.applications import Starlette

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.ports import HBONE_PORT, METRICS_PORT
from trustusbank.cluster.topology import Topology
from trustusbank.http_server import CLIENT_KEEP_ALIVE_SECONDS, uvicorn_config
from trustusbank.mesh.identity.istiod import WAYPOINT_PREFIX, CsrClient
from trustusbank.mesh.identity.secrets import SecretManager
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.waypoint.config_store import ConfigStore
from trustusbank.mesh.waypoint.egress import HboneBackend
from trustusbank.mesh.waypoint.ingress import Ingress
from trustusbank.mesh.waypoint.proxy import WaypointApp
from trustusbank.mesh.waypoint.telemetry import WaypointLog, WaypointMetrics
from trustusbank.mesh.waypoint.tunnelhttp import TunnelHttp
from trustusbank.periodic import every
from trustusbank.telemetry.admin import control_app
from trustusbank.telemetry.tracing import setup_tracing

log = logging.getLogger(__name__)


async def _started(servers: list[uvicorn.Server | TunnelHttp]) -> None:
    """uvicorn offers no event for "listening"; poll its flag briefly."""
    for _ in range(400):
        if all(s.started for s in servers):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the waypoint's listeners did not start")


class Waypoint:
    def __init__(self, files: ClusterFiles, gateway: str, deploy: Path) -> None:
        self.files = files
        self.gateway = gateway
        self.deploy = deploy
        self.topology = Topology.load(files.topology)
        pod = self.topology.waypoint(gateway)
        if pod is None:
            raise SystemExit(f"no waypoint pod for Gateway {gateway} in the topology")
        self.pod = pod
        self.identity = SpiffeId(self.topology.trust_domain, pod.namespace, pod.service_account)
        private = files.waypoint_dir(gateway)
        self.secrets = SecretManager(
            signer=CsrClient(
                files.istiod_socket, WAYPOINT_PREFIX + gateway, (private / "token").read_text().strip()
            ),
            trust_bundle_pem=files.trust_bundle.read_bytes(),
            directory=private / "certs",
        )
        self.metrics = WaypointMetrics()
        self.tracer_provider = setup_tracing(
            "agentgateway", files.traces / f"waypoint-{pod.name}.jsonl", registry=self.metrics.registry
        )
        self.ingress = Ingress(pod, self.identity, self.secrets, self.topology)
        self.store = ConfigStore(deploy, files, gateway)
        self.ready = False

    def _control_app(self) -> Starlette:
        return control_app(self.metrics.registry, lambda: self.ready)

    async def run(self) -> None:
        self.store.reload_if_changed()
        await self.secrets.get(self.identity)
        backend = HboneBackend(self.topology, self.secrets, self.identity, self.pod.ip)
        pool = httpcore.AsyncConnectionPool(
            network_backend=backend,
            max_connections=256,
            keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS,  # before the servers drop them, never after
        )
        app = WaypointApp(
            self.gateway,
            self.store.config,
            self.store.authz,
            self.ingress,
            self.topology,
            pool,
            WaypointLog(self.files.waypoint_log(self.gateway), self.gateway),
            self.metrics,
            self.tracer_provider.get_tracer("trustusbank.waypoint"),
        )
        http = TunnelHttp(app)  # no listener: reachable through an HBONE tunnel only
        control = uvicorn.Server(
            uvicorn_config(self._control_app(), host=self.pod.ip, port=METRICS_PORT, log_level="warning")
        )
        tasks = [asyncio.create_task(http.serve()), asyncio.create_task(control.serve())]

        hbone: asyncio.Server | None = None
        try:
            await _started([http, control])
            hbone = await self.ingress.serve(HBONE_PORT, http, app.handshake_refused)
            self.ready = True
            log.info("waypoint %s ready on %s", self.gateway, self.pod.ip)
            await asyncio.gather(
                every(1.0, self.store.reload_if_changed, "configuration reload"),
                every(1.0, self.secrets.rotate_due, "certificate rotation"),
            )
        finally:
            if hbone is not None:
                hbone.close()
            http.exit()
            control.should_exit = True
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await pool.aclose()
            await backend.aclose()  # the pooled HBONE connections under httpcore's tunnels
            self.tracer_provider.shutdown()
