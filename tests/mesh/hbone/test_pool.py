"""The HBONE pool over real sockets on 127.0.0.1: real mutual TLS 1.3, real HTTP/2, counted connections.

The server side is the project's HBONE server (which counts the TLS connections it
accepted), except where the test needs a peer that misbehaves in ways ours never does
(REFUSED_STREAM, a small SETTINGS_MAX_CONCURRENT_STREAMS): there a bare h2 server on the
same certificates plays it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from tests.mesh.hbone.test_hbone import echo
from tests.mesh.secrets import secrets_for
from trustusbank.mesh.hbone import (
    HboneError,
    HbonePool,
    HboneRefused,
    HboneRequest,
    ServerStats,
    Tunnel,
    serve,
    shutdown,
)
from trustusbank.mesh.hbone import h2 as hbone_h2
from trustusbank.mesh.identity import CertificateAuthority, SecretManager, SpiffeId

SERVER_ID = SpiffeId("cluster.local", "bank", "account-mcp")
CLIENT_ID = SpiffeId("cluster.local", "agents", "support-bot")
OTHER_CLIENT = SpiffeId("cluster.local", "agents", "fraud-bot")
AUTHORITY = "10.0.0.7:8000"
DEADLINE = 30  # a guard against hanging, never an assertion about speed


@pytest.fixture
async def secrets(tmp_path: Path) -> SecretManager:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    return await secrets_for(ca, tmp_path / "certs", SERVER_ID, CLIENT_ID, OTHER_CLIENT)


@dataclass
class Server:
    """The project's HBONE server on a free port, echoing, answering `status`."""

    secrets: SecretManager
    port: int = 0
    status: int = 200
    stats: ServerStats = field(default_factory=ServerStats)
    server: asyncio.Server | None = None
    requests: list[HboneRequest] = field(default_factory=list)

    async def start(self) -> None:
        self.server = await serve(
            "127.0.0.1",
            self.port,
            ssl_context_for=lambda: self.secrets.ssl_server_context(SERVER_ID),
            handler=echo,
            authorize=self.authorize,
            stats=self.stats,
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def authorize(self, request: HboneRequest) -> int:
        self.requests.append(request)
        return self.status

    async def stop(self) -> None:
        if self.server is not None:
            await shutdown(self.server)
            self.server = None


@pytest.fixture
async def server(secrets: SecretManager) -> AsyncIterator[Server]:
    running = Server(secrets)
    await running.start()
    async with asyncio.timeout(DEADLINE):
        yield running
    await running.stop()


@pytest.fixture
async def pool() -> AsyncIterator[HbonePool]:
    pool = HbonePool(enabled=True)
    yield pool
    await pool.close()


async def tunnel(
    pool: HbonePool,
    port: int,
    secrets: SecretManager,
    source: SpiffeId = CLIENT_ID,
    *,
    expected: SpiffeId = SERVER_ID,
    local_ip: str | None = None,
) -> Tunnel:
    return await pool.open_tunnel(
        "127.0.0.1",
        port,
        authority=AUTHORITY,
        source=source,
        ssl_context=secrets.ssl_client_context(source),
        expected_identity=expected,
        headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        timeout=5,
        local_addr=(local_ip, 0) if local_ip else None,
    )


async def echoed(t: Tunnel, data: bytes) -> bytes:
    await t.write(data)
    return await t.read()


async def test_tunnels_to_one_peer_share_one_connection(
    server: Server, pool: HbonePool, secrets: SecretManager
) -> None:
    first, second, third = await asyncio.gather(*(tunnel(pool, server.port, secrets) for _ in range(3)))
    try:
        results = await asyncio.gather(echoed(first, b"one"), echoed(second, b"two"), echoed(third, b"three"))
        assert results == [b"one", b"two", b"three"]
        assert server.stats.connections == 1, "one TLS handshake for all three tunnels"
        assert server.stats.streams_accepted == 3
        assert pool.connections_opened == 1
        assert [r.headers["traceparent"][:5] for r in server.requests] == ["00-4b"] * 3
        assert {r.peer_identity for r in server.requests} == {CLIENT_ID}
    finally:
        for t in (first, second, third):
            await t.close()


async def test_other_source_identities_and_addresses_get_their_own_connections(
    server: Server, pool: HbonePool, secrets: SecretManager
) -> None:
    support = await tunnel(pool, server.port, secrets, CLIENT_ID)
    fraud = await tunnel(pool, server.port, secrets, OTHER_CLIENT)
    elsewhere = await tunnel(pool, server.port, secrets, CLIENT_ID, local_ip="127.0.0.2")
    try:
        assert server.stats.connections == 3
        # Each stream carries the identity its own connection proved, and the source address.
        assert [(r.peer_identity, r.peer_addr[0] if r.peer_addr else None) for r in server.requests] == [
            (CLIENT_ID, "127.0.0.1"),
            (OTHER_CLIENT, "127.0.0.1"),
            (CLIENT_ID, "127.0.0.2"),
        ]
    finally:
        for t in (support, fraud, elsewhere):
            await t.close()


async def test_closing_one_tunnel_leaves_the_others_on_the_connection_working(
    server: Server, pool: HbonePool, secrets: SecretManager
) -> None:
    first = await tunnel(pool, server.port, secrets)
    second = await tunnel(pool, server.port, secrets)
    await first.close()
    with pytest.raises(HboneError):
        await first.read()
    assert await echoed(second, b"still here") == b"still here"
    third = await tunnel(pool, server.port, secrets)
    assert await echoed(third, b"and again") == b"and again"
    assert server.stats.connections == 1
    await second.close()
    await third.close()


async def test_a_refused_connect_refuses_only_that_stream(
    server: Server, pool: HbonePool, secrets: SecretManager
) -> None:
    allowed = await tunnel(pool, server.port, secrets)
    server.status = 403
    with pytest.raises(HboneRefused) as refused:
        await tunnel(pool, server.port, secrets)
    assert refused.value.status == 403
    assert len(server.requests) == 2, "a refusal is an answer: never retried"
    assert await echoed(allowed, b"unaffected") == b"unaffected"
    server.status = 200
    again = await tunnel(pool, server.port, secrets)
    assert server.stats.connections == 1
    await allowed.close()
    await again.close()


async def test_a_dead_connection_is_replaced_never_handed_out(
    server: Server, pool: HbonePool, secrets: SecretManager
) -> None:
    old = await tunnel(pool, server.port, secrets)
    [connection] = pool.connections()
    await server.stop()  # ends every live connection, as a restarting node would
    with pytest.raises(HboneError):
        await old.read()
    await connection.wait_closed()
    assert pool.connections() == []
    await server.start()  # same port, fresh counters on a fresh listener
    fresh = await tunnel(pool, server.port, secrets)
    assert await echoed(fresh, b"new connection") == b"new connection"
    assert pool.connections_opened == 2
    await old.close()
    await fresh.close()


async def test_every_new_connection_checks_the_server_identity(
    server: Server, pool: HbonePool, secrets: SecretManager
) -> None:
    with pytest.raises(HboneError, match="not the expected"):
        await tunnel(pool, server.port, secrets, expected=OTHER_CLIENT)
    assert pool.connections() == [], "a connection that failed the check is not kept"
    assert server.requests == [], "no CONNECT goes to the wrong peer"


async def test_a_rotated_svid_gets_a_new_connection_and_drains_the_old(
    server: Server, pool: HbonePool, secrets: SecretManager
) -> None:
    before = await tunnel(pool, server.port, secrets)
    [old_connection] = pool.connections()
    svid = secrets.cached(CLIENT_ID)
    assert svid is not None
    assert CLIENT_ID in await secrets.rotate_due(now=svid.not_after)
    after = await tunnel(pool, server.port, secrets)
    assert server.stats.connections == 2, "the new certificate is not sent down the old connection"
    assert pool.connections_opened == 2
    assert await echoed(before, b"old keeps its tunnel") == b"old keeps its tunnel"
    another = await tunnel(pool, server.port, secrets)
    assert server.stats.connections == 2, "new tunnels go on the new connection"
    await before.close()  # the old connection's last tunnel: it closes
    await old_connection.wait_closed()
    assert old_connection not in pool.connections()
    assert await echoed(after, b"new") == b"new"
    await after.close()
    await another.close()


async def test_pool_max_streams_opens_another_connection_when_full(
    server: Server, secrets: SecretManager
) -> None:
    pool = HbonePool(enabled=True, max_streams=2)
    try:
        tunnels = [await tunnel(pool, server.port, secrets) for _ in range(3)]
        assert server.stats.connections == 2
        await tunnels[0].close()  # room again on the first connection
        fourth = await tunnel(pool, server.port, secrets)
        assert server.stats.connections == 2
        for t in (*tunnels[1:], fourth):
            assert await echoed(t, b"ok") == b"ok"
            await t.close()
    finally:
        await pool.close()


async def test_an_idle_connection_is_closed(server: Server, secrets: SecretManager) -> None:
    pool = HbonePool(enabled=True, idle_timeout=0.01)
    try:
        t = await tunnel(pool, server.port, secrets)
        [connection] = pool.connections()
        await t.close()
        await connection.wait_closed()
        assert pool.connections() == []
        again = await tunnel(pool, server.port, secrets)
        assert server.stats.connections == 2
        await again.close()
    finally:
        await pool.close()


async def test_close_ends_every_connection_and_refuses_new_tunnels(
    server: Server, pool: HbonePool, secrets: SecretManager
) -> None:
    support = await tunnel(pool, server.port, secrets, CLIENT_ID)
    fraud = await tunnel(pool, server.port, secrets, OTHER_CLIENT)
    connections = pool.connections()
    assert len(connections) == 2
    await pool.close()
    for t in (support, fraud):
        with pytest.raises(HboneError):
            await t.read()
    assert all(c.is_closed for c in connections)
    with pytest.raises(HboneError, match="closed"):
        await tunnel(pool, server.port, secrets)
    await support.close()
    await fraud.close()


async def test_pooling_off_gives_each_tunnel_its_own_connection(
    server: Server, secrets: SecretManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTUSBANK_HBONE_POOL", "0")
    pool = HbonePool()
    assert not pool.enabled
    first = await tunnel(pool, server.port, secrets)
    second = await tunnel(pool, server.port, secrets)
    assert server.stats.connections == 2
    await first.close()
    assert await echoed(second, b"own connection") == b"own connection"
    await second.close()
    await pool.close()


# A bare h2 peer for what our server never does -------------------------------------------


@dataclass
class BarePeer:
    """An HTTP/2 server on the real certificates: per connection, REFUSED_STREAM or 200 for every CONNECT."""

    secrets: SecretManager
    refuse: set[int] = field(default_factory=set)  # connection numbers (from 1) whose streams are refused
    max_streams: int | None = None
    connections: int = 0
    requests: list[int] = field(default_factory=list)  # the connection number of each CONNECT
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        if self.max_streams is not None:
            conn.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        writer.write(conn.data_to_send())
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        self.requests.append(number)
                        if number in self.refuse:
                            conn.reset_stream(event.stream_id, ErrorCodes.REFUSED_STREAM)
                        else:
                            conn.send_headers(event.stream_id, [(":status", "200")])
                writer.write(conn.data_to_send())
        writer.close()


@pytest.fixture
async def bare(secrets: SecretManager) -> AsyncIterator[BarePeer]:
    peer = BarePeer(secrets)
    listener = await asyncio.start_server(
        peer.handle, "127.0.0.1", 0, ssl=secrets.ssl_server_context(SERVER_ID)
    )
    peer.port = listener.sockets[0].getsockname()[1]
    async with asyncio.timeout(DEADLINE):
        yield peer
    listener.close()


async def test_a_connect_the_server_never_processed_is_retried_once_on_a_new_connection(
    bare: BarePeer, pool: HbonePool, secrets: SecretManager
) -> None:
    first = await tunnel(pool, bare.port, secrets)  # connection 1 answers
    bare.refuse = {1}  # from now on it refuses every new stream, unprocessed
    second = await tunnel(pool, bare.port, secrets)
    assert second.status == 200
    assert bare.requests == [1, 1, 2], "refused on the pooled connection, then once on a new one"
    assert first.status == 200
    await first.close()
    await second.close()


async def test_a_second_refusal_is_not_retried_again(
    bare: BarePeer, pool: HbonePool, secrets: SecretManager
) -> None:
    bare.refuse = {1, 2, 3}
    with pytest.raises(HboneError, match="REFUSED_STREAM"):
        await tunnel(pool, bare.port, secrets)
    assert bare.requests == [1, 2]


async def test_the_peers_max_concurrent_streams_is_respected(
    bare: BarePeer, pool: HbonePool, secrets: SecretManager
) -> None:
    bare.max_streams = 1
    first = await tunnel(pool, bare.port, secrets)
    second = await tunnel(pool, bare.port, secrets)
    assert bare.connections == 2, "a peer allowing one stream gets a second connection"
    assert bare.requests == [1, 2], "no stream was sent beyond the peer's limit"
    await first.close()
    third = await tunnel(pool, bare.port, secrets)
    assert bare.requests == [1, 2, 1], "the first connection has room again"
    await second.close()
    await third.close()


async def test_a_pooled_connection_remembers_only_its_latest_closed_streams(
    server: Server, pool: HbonePool, secrets: SecretManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h2 would remember 65,536 closed streams per connection; a long-lived pooled one keeps a few."""
    monkeypatch.setattr(hbone_h2, "CLOSED_STREAMS_KEPT", 8)
    for n in range(30):
        t = await tunnel(pool, server.port, secrets)
        assert await echoed(t, b"%d" % n) == b"%d" % n  # a stream after the forgotten ones works
        await t.close()
    [connection] = pool.connections()
    assert server.stats.connections == 1
    assert connection.closed_streams_remembered == 8
