"""The waypoint's way out: HTTP connections to backends, each carried over HBONE.

httpcore does HTTP/1.1 (pooling, streaming, SSE); this network backend gives it
a tunnel instead of a socket, and tunnels to one pod share an HTTP/2 connection
(`HbonePool`), as ztunnel's do. The tunnel is opened with the waypoint's own SVID
and checks the backend pod's, so the destination's ztunnel sees the waypoint's
identity, as on a cluster.
"""

from __future__ import annotations

import asyncio
import typing

import httpcore

from trustusbank.cluster.discovery import Unresolvable, resolve
from trustusbank.cluster.ports import HBONE_PORT
from trustusbank.cluster.topology import Topology
from trustusbank.mesh.hbone.client import Tunnel
from trustusbank.mesh.hbone.h2 import HboneError
from trustusbank.mesh.hbone.pool import HbonePool
from trustusbank.mesh.identity.secrets import SecretManager
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.telemetry.tracing import inject


class TunnelStream(httpcore.AsyncNetworkStream):
    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            return await asyncio.wait_for(self.tunnel.read(max_bytes), timeout)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except HboneError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        try:
            await asyncio.wait_for(self.tunnel.write(buffer), timeout)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except HboneError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        await self.tunnel.close()

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "peer_identity":
            return self.tunnel.peer_identity
        if info == "is_readable":  # how httpcore notices an idle pooled connection was closed
            return self.tunnel.readable
        return None


class HboneBackend(httpcore.AsyncNetworkBackend):
    """Resolves a backend host as the mesh does and tunnels to the pod behind it."""

    def __init__(self, topology: Topology, secrets: SecretManager, identity: SpiffeId, local_ip: str) -> None:
        self.topology = topology
        self.secrets = secrets
        self.identity = identity
        self.local_ip = local_ip
        # httpcore's keep-alive connections are tunnels; those to one pod share an HTTP/2 connection.
        self.pool = HbonePool()

    async def aclose(self) -> None:
        """End the pooled HBONE connections (the waypoint is stopping)."""
        await self.pool.close()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            dest = resolve(self.topology, host, port, self.identity.namespace)
        except Unresolvable as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        if dest.pod is None or not dest.captured:
            raise httpcore.ConnectError(f"{host}:{port} is not a workload in the mesh")
        expected = SpiffeId(self.topology.trust_domain, dest.pod.namespace, dest.pod.service_account)
        try:
            tunnel = await self.pool.open_tunnel(
                dest.pod.ip,
                HBONE_PORT,
                authority=dest.authority,
                source=self.identity,
                ssl_context=self.secrets.ssl_client_context(self.identity),
                expected_identity=expected,
                headers=inject(),
                timeout=timeout or 10,
                local_addr=(self.local_ip, 0),
            )
        except HboneError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return TunnelStream(tunnel)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the waypoint only reaches backends through the mesh")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
