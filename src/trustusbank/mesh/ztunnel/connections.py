"""The inbound connections a node proxy is carrying, so a policy update can judge them again.

AuthorizationPolicy is asserted when a connection opens, but a connection (a pooled
tunnel, a keep-alive socket) can outlive the policy that admitted it. Real ztunnel keeps
every inbound connection in its connection manager and, when policies change, asserts
each one again and closes those no longer allowed. This is that registry: who is
connected to which pod and port, the access-log record being built for it, and how to
close it in both directions. Deciding stays with the inbound side; this module only
remembers and closes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from trustusbank.cluster.topology import Pod
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.ztunnel.access_log import ConnectionRecord

log = logging.getLogger(__name__)

Closer = Callable[[], object]


@dataclass(eq=False)
class LiveConnection:
    """One admitted inbound connection: what policy is asserted on, and how to end it.

    `source` is the peer's verified SPIFFE ID (None for plaintext, which also meets
    PeerAuthentication). The closer is attached once the app side is connected; a
    connection closed before that is closed as soon as it is attached.
    """

    pod: Pod
    port: int
    source: SpiffeId | None
    source_ip: str
    record: ConnectionRecord
    plaintext: bool = False
    closed: bool = False
    _closer: Closer | None = field(default=None, repr=False)

    @property
    def principal(self) -> str | None:
        return self.source.uri if self.source else None

    def on_close(self, closer: Closer) -> None:
        """How to end this connection (both directions); runs at once if it was closed already."""
        self._closer = closer
        if self.closed:
            self._run_closer()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._run_closer()

    def _run_closer(self) -> None:
        closer, self._closer = self._closer, None
        if closer is None:
            return
        try:
            closer()
        except Exception:  # the connection is being torn down; an error here must not stop the others
            log.exception("closing %s failed", self)

    def __str__(self) -> str:
        source = self.principal or "plaintext"
        return f"{source} ({self.record.src_addr}) -> {self.pod.namespace}/{self.pod.name}:{self.port}"


class LiveConnections:
    """The registry: track on admission, release when the connection ends, close on a policy update."""

    def __init__(self) -> None:
        self._live: set[LiveConnection] = set()

    def __len__(self) -> int:
        return len(self._live)

    def track(
        self,
        pod: Pod,
        port: int,
        source: SpiffeId | None,
        source_ip: str,
        record: ConnectionRecord,
        *,
        plaintext: bool = False,
    ) -> LiveConnection:
        connection = LiveConnection(pod, port, source, source_ip, record, plaintext)
        self._live.add(connection)
        return connection

    def release(self, connection: LiveConnection) -> None:
        self._live.discard(connection)

    def snapshot(self) -> list[LiveConnection]:
        """The connections live now; closing some while iterating over this list is safe."""
        return list(self._live)

    def close(self, connection: LiveConnection) -> None:
        """Stop tracking `connection` and end it."""
        self._live.discard(connection)
        connection.close()
