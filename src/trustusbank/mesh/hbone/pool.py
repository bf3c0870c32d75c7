"""HBONE connection pooling: many CONNECT streams over one HTTP/2 connection per peer pair, as ztunnel.

Real ztunnel keeps a pool keyed by `WorkloadKey` (source identity, destination identity,
destination address, source IP) and opens a new CONNECT stream on a live connection
instead of a new TCP + TLS + HTTP/2 handshake per tunnel. Here the key also holds the
source's TLS context, i.e. its current certificate: a rotated SVID never reuses a
connection made with the old one, and the old connections of that pair are drained
(no new streams; closed when their last tunnel closes).

What stays as without a pool: every new connection is dialled with the source's SVID and
must prove the expected destination identity (`client.connect`), and a refused CONNECT
(non-2xx) refuses that stream only. A connection takes at most as many tunnels as the
peer's SETTINGS_MAX_CONCURRENT_STREAMS (and `max_streams`); a fuller pair gets another
connection. A closed, failed or GOAWAY'd connection is never handed out again; a CONNECT
the server provably never processed (the connection was already gone, REFUSED_STREAM,
above its GOAWAY) is tried once more on a fresh connection. Connections idle for
`idle_timeout` are closed; `close()` ends them all.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from trustusbank.env import HBONE_POOL
from trustusbank.mesh.hbone.client import Tunnel, abandon, connect, open_tunnel, request, request_headers
from trustusbank.mesh.hbone.h2 import HboneConnection, HboneError, HboneUnsent
from trustusbank.mesh.identity.spiffe import SpiffeId

log = logging.getLogger(__name__)

# ztunnel's defaults: 100 streams per connection (POOL_MAX_STREAMS_PER_CONNECTION) and an
# unused connection released after a while (POOL_UNUSED_RELEASE_TIMEOUT).
MAX_STREAMS = 100
IDLE_TIMEOUT = 300.0


@dataclass(frozen=True)
class PoolKey:
    """Which connections a tunnel may share: ztunnel's WorkloadKey plus the source's certificate."""

    source: SpiffeId
    destination: SpiffeId
    host: str
    port: int
    local_ip: str | None
    context: ssl.SSLContext  # compared by identity: a rotated SVID comes with a new context

    @property
    def pair(self) -> tuple[SpiffeId, SpiffeId, str, int, str | None]:
        """The key without the certificate: what a rotation drains."""
        return (self.source, self.destination, self.host, self.port, self.local_ip)


@dataclass(eq=False)
class _Pooled:
    """One pooled connection and the tunnels leased on it."""

    connection: HboneConnection
    key: PoolKey
    leased: int = 0
    draining: bool = False
    idle_timer: asyncio.TimerHandle | None = None

    def usable(self, max_streams: int) -> bool:
        conn = self.connection
        capacity = min(max_streams, conn.max_concurrent_streams)
        return not self.draining and not conn.is_closed and self.leased < capacity


class HbonePool:
    """Opens HBONE tunnels, reusing connections per `PoolKey`; one per process side (ztunnel, waypoint)."""

    def __init__(
        self,
        *,
        max_streams: int = MAX_STREAMS,
        idle_timeout: float = IDLE_TIMEOUT,
        enabled: bool | None = None,
    ) -> None:
        if max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        self.max_streams = max_streams
        self.idle_timeout = idle_timeout
        # The one place the switch is read: off, every tunnel gets a connection of its own.
        self.enabled = HBONE_POOL.read() if enabled is None else enabled
        self._pools: dict[PoolKey, list[_Pooled]] = {}
        self._dialling: dict[PoolKey, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self.connections_opened = 0

    def connections(self) -> list[HboneConnection]:
        """The live pooled connections (for metrics and tests)."""
        return [p.connection for pooled in self._pools.values() for p in pooled if not p.connection.is_closed]

    async def open_tunnel(
        self,
        host: str,
        port: int,
        *,
        authority: str,
        source: SpiffeId,
        ssl_context: ssl.SSLContext,
        expected_identity: SpiffeId,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10,  # noqa: ASYNC109 - one deadline for finding a connection and the CONNECT answer
        local_addr: tuple[str, int] | None = None,
    ) -> Tunnel:
        """As `client.open_tunnel`, on a shared connection; `source` is who `ssl_context` proves.

        Raises HboneRefused for a non-2xx answer and HboneError for every other failure.
        """
        if self._closed:
            raise HboneError("HBONE pool is closed")
        if not self.enabled:
            return await open_tunnel(
                host,
                port,
                authority=authority,
                ssl_context=ssl_context,
                expected_identity=expected_identity,
                headers=headers,
                timeout=timeout,
                local_addr=local_addr,
            )
        local_ip = local_addr[0] if local_addr else None
        key = PoolKey(source, expected_identity, host, port, local_ip, ssl_context)
        extra = request_headers(headers or {})
        try:
            async with asyncio.timeout(timeout):
                return await self._open(key, authority, extra, local_addr)
        except TimeoutError as exc:
            raise HboneError(f"HBONE to {host}:{port} timed out after {timeout}s") from exc
        except OSError as exc:
            raise HboneError(f"HBONE to {host}:{port} failed: {exc}") from exc

    async def _open(
        self,
        key: PoolKey,
        authority: str,
        headers: list[tuple[str, str]],
        local_addr: tuple[str, int] | None,
    ) -> Tunnel:
        fresh_only = False
        while True:
            pooled = None if fresh_only else self._lease_existing(key)
            if pooled is None:
                pooled = await self._lease_new(key, local_addr, reuse=not fresh_only)
            try:
                return await request(pooled.connection, authority, headers, release=self._releaser(pooled))
            except HboneUnsent as exc:
                if fresh_only:
                    raise
                # The server never saw this CONNECT: once more, on a connection of its own.
                log.debug("HBONE CONNECT to %s not processed (%s); once more", key.host, exc)
                self._drain(pooled)
                fresh_only = True

    def _lease_existing(self, key: PoolKey) -> _Pooled | None:
        pooled = self._pools.get(key)
        if not pooled:
            return None
        for candidate in list(pooled):
            if candidate.connection.is_closed:
                self._forget(candidate)
            elif candidate.usable(self.max_streams):
                self._lease(candidate)
                return candidate
        return None

    async def _lease_new(self, key: PoolKey, local_addr: tuple[str, int] | None, *, reuse: bool) -> _Pooled:
        # One dial at a time per key: callers arriving meanwhile share what it makes.
        lock = self._dialling.setdefault(key, asyncio.Lock())
        async with lock:
            if reuse and (existing := self._lease_existing(key)) is not None:
                return existing
            if self._closed:
                raise HboneError("HBONE pool is closed")
            connection = await connect(key.host, key.port, key.context, key.destination, local_addr)
            try:
                await connection.wait_settings()
            except BaseException:
                await abandon(connection)
                raise
            if self._closed:
                await abandon(connection)
                raise HboneError("HBONE pool is closed")
            self.connections_opened += 1
            pooled = _Pooled(connection, key)
            self._drain_rotated(key)
            self._pools.setdefault(key, []).append(pooled)
            self._lease(pooled)
            return pooled

    def _lease(self, pooled: _Pooled) -> None:
        pooled.leased += 1
        if pooled.idle_timer is not None:
            pooled.idle_timer.cancel()
            pooled.idle_timer = None

    def _releaser(self, pooled: _Pooled) -> Callable[[], Awaitable[None]]:
        async def release() -> None:
            pooled.leased -= 1
            if pooled.leased > 0:
                return
            if pooled.draining or pooled.connection.is_closed or self._closed:
                self._forget(pooled)
                await pooled.connection.close()
            else:
                loop = asyncio.get_running_loop()
                pooled.idle_timer = loop.call_later(self.idle_timeout, self._expire, pooled)

        return release

    def _expire(self, pooled: _Pooled) -> None:
        pooled.idle_timer = None
        if pooled.leased == 0:
            self._forget(pooled)
            self._close_soon(pooled.connection)

    def _drain(self, pooled: _Pooled) -> None:
        """No new tunnels on this connection; it closes when its last tunnel does."""
        pooled.draining = True
        if pooled.leased == 0:
            self._forget(pooled)
            self._close_soon(pooled.connection)

    def _drain_rotated(self, key: PoolKey) -> None:
        for other, pooled in list(self._pools.items()):
            if other != key and other.pair == key.pair:
                for candidate in list(pooled):
                    self._drain(candidate)

    def _forget(self, pooled: _Pooled) -> None:
        if pooled.idle_timer is not None:
            pooled.idle_timer.cancel()
            pooled.idle_timer = None
        siblings = self._pools.get(pooled.key)
        if siblings is not None and pooled in siblings:
            siblings.remove(pooled)
            if not siblings:
                del self._pools[pooled.key]
                self._dialling.pop(pooled.key, None)

    def _close_soon(self, connection: HboneConnection) -> None:
        task = asyncio.get_running_loop().create_task(connection.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every pooled connection (their tunnels fail); later `open_tunnel` calls fail."""
        self._closed = True
        every = [p for pooled in self._pools.values() for p in pooled]
        for pooled in every:
            self._forget(pooled)
        self._pools.clear()
        self._dialling.clear()
        results = await asyncio.gather(
            *(p.connection.close() for p in every), *self._closing, return_exceptions=True
        )
        for result in results:
            if isinstance(result, Exception):
                log.debug("closing a pooled HBONE connection failed: %s", result)
