"""The waypoint's way in: HBONE with its own SVID, then HTTP on a private listener.

The tunnel's verified peer identity must reach the HTTP layer without ever
being something a client could write. Each tunnel gets its own connection to
the private HTTP listener, and the waypoint keys the caller's identity by that
connection's source port: the identity travels with the socket, not in a header.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from trustusbank.cluster.topology import Pod, Topology
from trustusbank.mesh.hbone.h2 import HboneStream, pipe
from trustusbank.mesh.hbone.server import HboneRequest, serve
from trustusbank.mesh.identity.secrets import SecretManager
from trustusbank.mesh.identity.spiffe import SpiffeId

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who is on the other end of one tunnel, as proven by mTLS."""

    identity: SpiffeId | None
    peer_addr: str
    authority_host: str
    authority_port: int
    hbone_headers: dict[str, str] = field(default_factory=dict)


class Ingress:
    def __init__(
        self, pod: Pod, identity: SpiffeId, secrets: SecretManager, topology: Topology, private_port: int
    ):
        self.pod = pod
        self.identity = identity
        self.secrets = secrets
        self.topology = topology
        self.private = (pod.app_ip, private_port)
        self.callers: dict[int, Caller] = {}

    def caller(self, client_port: int) -> Caller | None:
        return self.callers.get(client_port)

    def _addressed_to_me(self, request: HboneRequest) -> bool:
        """Our own listeners, or a Service bound to this waypoint (what ztunnel sends us)."""
        if request.host == self.pod.ip:
            return any(p.port == request.port for p in self.pod.ports)
        return any(
            s.fqdn == request.host
            and s.waypoint == self.pod.gateway
            and any(p.port == request.port for p in s.ports)
            for s in self.topology.services
        )

    def _authorize(self, request: HboneRequest) -> int:
        if request.peer_identity is None:
            return 401
        return 200 if self._addressed_to_me(request) else 503

    async def _handle(self, request: HboneRequest, stream: HboneStream) -> None:
        reader, writer = await asyncio.open_connection(*self.private)
        port = writer.get_extra_info("sockname")[1]
        peer = request.peer_addr
        self.callers[port] = Caller(
            identity=request.peer_identity,
            peer_addr=f"{peer[0]}:{peer[1]}" if peer else "?",
            authority_host=request.host,
            authority_port=request.port,
            hbone_headers=dict(request.headers),
        )
        try:
            await pipe(stream, reader, writer)
        finally:
            self.callers.pop(port, None)

    async def serve(self, port: int) -> asyncio.Server:
        return await serve(
            self.pod.ip,
            port,
            ssl_context_for=lambda: self.secrets.ssl_server_context(self.identity),
            authorize=self._authorize,
            handler=self._handle,
            on_handshake_error=lambda peer, reason: log.info("refused handshake from %s: %s", peer, reason),
        )
