"""The waypoint's way in: HBONE with its own SVID, then HTTP over that tunnel only.

The tunnel's verified peer identity must reach the HTTP layer without ever
being something a client could write or a local process could imitate. Each
accepted tunnel gets a key of the waypoint's own, and HTTP/1.1 is served on the
tunnel's stream itself (`tunnelhttp`) with that key in every request's scope; the
key names the Caller while the tunnel lasts. There is no HTTP listener to connect to, and no
address, port or header is ever read as a caller.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trustusbank.cluster.topology import Pod, Topology
from trustusbank.mesh.hbone.h2 import HboneStream
from trustusbank.mesh.hbone.server import HboneRequest, serve
from trustusbank.mesh.identity.secrets import SecretManager
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.waypoint.tunnelhttp import TunnelHttp, tunnel_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who is on the other end of one tunnel, as proven by mTLS."""

    identity: SpiffeId | None
    peer_addr: str
    authority_host: str
    authority_port: int
    hbone_headers: dict[str, str] = field(default_factory=dict)


HandshakeErrorHook = Callable[[tuple[str, int] | None, str], None]


class Ingress:
    def __init__(self, pod: Pod, identity: SpiffeId, secrets: SecretManager, topology: Topology) -> None:
        self.pod = pod
        self.identity = identity
        self.secrets = secrets
        self.topology = topology
        self.callers: dict[int, Caller] = {}
        """Live tunnels by the key their HTTP connection's requests carry."""
        self._keys = itertools.count(1)
        self._http: TunnelHttp | None = None

    def caller(self, scope: dict[str, Any]) -> Caller | None:
        """The Caller of the tunnel this request arrived on; None if it came through none that is live."""
        key = tunnel_of(scope)
        return self.callers.get(key) if key is not None else None

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
        assert self._http is not None
        key = next(self._keys)
        peer = request.peer_addr
        self.callers[key] = Caller(
            identity=request.peer_identity,
            peer_addr=f"{peer[0]}:{peer[1]}" if peer else "?",
            authority_host=request.host,
            authority_port=request.port,
            hbone_headers=dict(request.headers),
        )
        try:
            await self._http.serve_tunnel(key, stream, peer=peer, local=stream.local_addr)
        finally:
            self.callers.pop(key, None)

    async def serve(
        self, port: int, http: TunnelHttp, on_handshake_error: HandshakeErrorHook | None = None
    ) -> asyncio.Server:
        """HBONE on the pod IP; each accepted tunnel is served by `http` (which must be serving)."""
        self._http = http
        return await serve(
            self.pod.ip,
            port,
            ssl_context_for=lambda: self.secrets.ssl_server_context(self.identity),
            authorize=self._authorize,
            handler=self._handle,
            on_handshake_error=on_handshake_error,
        )
