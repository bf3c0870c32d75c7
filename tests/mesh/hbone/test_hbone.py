"""HBONE over real sockets on 127.0.0.1: mutual TLS 1.3, HTTP/2 CONNECT, flow control, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.mesh.secrets import secrets_for, signer_for
from trustusbank.mesh.hbone import (
    HboneError,
    HboneRefused,
    HboneRequest,
    HboneStream,
    ServerStats,
    Tunnel,
    client_context,
    open_tunnel,
    parse_authority,
    pipe,
    serve,
    shutdown,
)
from trustusbank.mesh.identity import CertificateAuthority, SecretManager, SpiffeId

SERVER_ID = SpiffeId("cluster.local", "bank", "transaction-mcp")
CLIENT_ID = SpiffeId("cluster.local", "agents", "banking-agent")
AUTHORITY = "10.0.0.7:8080"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
DEADLINE = 30


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path / "ca")


@pytest.fixture
async def secrets(ca: CertificateAuthority, tmp_path: Path) -> SecretManager:
    return await secrets_for(ca, tmp_path / "certs", SERVER_ID, CLIENT_ID)


async def echo(request: HboneRequest, stream: HboneStream) -> None:
    while data := await stream.read():
        await stream.write(data)
    await stream.write_eof()


@dataclass
class Harness:
    """A running HBONE server and what it saw."""

    secrets: SecretManager
    port: int = 0
    status: int = 200
    handler: Callable[[HboneRequest, HboneStream], Awaitable[None]] = echo
    requests: list[HboneRequest] = field(default_factory=list)
    handshake_errors: list[tuple[tuple[str, int] | None, str]] = field(default_factory=list)
    stats: ServerStats = field(default_factory=ServerStats)
    handshake_failed: asyncio.Event = field(default_factory=asyncio.Event)

    async def authorize(self, request: HboneRequest) -> int:
        self.requests.append(request)
        return self.status

    async def handle(self, request: HboneRequest, stream: HboneStream) -> None:
        await self.handler(request, stream)

    def on_handshake_error(self, peer: tuple[str, int] | None, reason: str) -> None:
        self.handshake_errors.append((peer, reason))
        self.handshake_failed.set()

    async def connect(self, context: ssl.SSLContext | None = None, **kwargs: object) -> Tunnel:
        options: dict[str, object] = {
            "authority": AUTHORITY,
            "expected_identity": SERVER_ID,
            "headers": {"traceparent": TRACEPARENT, "baggage": "k8s.namespace.name=agents"},
            "timeout": 5,
        }
        options.update(kwargs)
        return await open_tunnel(
            "127.0.0.1",
            self.port,
            ssl_context=context or self.secrets.ssl_client_context(CLIENT_ID),
            **options,  # type: ignore[arg-type]
        )

    async def wait_for_handshake_error(self) -> None:
        await asyncio.wait_for(self.handshake_failed.wait(), 30)


@pytest.fixture
async def harness(secrets: SecretManager) -> AsyncIterator[Harness]:
    harness = Harness(secrets)
    server = await serve(
        "127.0.0.1",
        0,
        ssl_context_for=lambda: secrets.ssl_server_context(SERVER_ID),
        handler=harness.handle,
        authorize=harness.authorize,
        on_handshake_error=harness.on_handshake_error,
        stats=harness.stats,
    )
    harness.port = server.sockets[0].getsockname()[1]
    async with asyncio.timeout(DEADLINE):
        yield harness
    await shutdown(server)


async def read_all(stream: HboneStream) -> bytes:
    chunks = []
    while data := await stream.read():
        chunks.append(data)
    return b"".join(chunks)


def bare_context(bundle: bytes, **overrides: object) -> ssl.SSLContext:
    """A client context built by hand, for the misbehaving clients."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=bundle.decode())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    for name, value in overrides.items():
        if name == "alpn":
            context.set_alpn_protocols(value)  # type: ignore[arg-type]
        elif name == "cert":
            context.load_cert_chain(value)  # type: ignore[arg-type]
        else:
            setattr(context, name, value)
    return context


# Happy path


async def test_tunnel_carries_identities_authority_and_headers(harness: Harness) -> None:
    tunnel = await harness.connect()
    try:
        assert tunnel.peer_identity == SERVER_ID
        assert tunnel.status == 200
        assert tunnel.response_headers[":status"] == "200"
        await tunnel.write(b"ping")
        assert await tunnel.read() == b"ping"
    finally:
        await tunnel.close()
    [request] = harness.requests
    assert request.peer_identity == CLIENT_ID
    assert str(request.authority) == AUTHORITY
    assert request.authority == ("10.0.0.7", 8080)
    assert (request.host, request.port) == ("10.0.0.7", 8080)
    assert request.local_port == harness.port
    assert request.headers["traceparent"] == TRACEPARENT
    assert request.headers["baggage"] == "k8s.namespace.name=agents"
    assert request.peer_addr is not None
    assert request.peer_addr[0] == "127.0.0.1"
    assert harness.stats.streams_accepted == 1


async def test_five_mib_each_way_round_trips_intact(harness: Harness) -> None:
    payload = os.urandom(5 * 1024 * 1024)
    tunnel = await harness.connect()

    async def send() -> None:
        view = memoryview(payload)
        for offset in range(0, len(payload), 1024 * 1024):
            await tunnel.write(bytes(view[offset : offset + 1024 * 1024]))
        await tunnel.write_eof()

    try:
        sender = asyncio.create_task(send())
        echoed = await read_all(tunnel)
        await sender
    finally:
        await tunnel.close()
    assert len(echoed) == len(payload)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


async def test_a_slow_reader_throttles_the_sender(harness: Harness) -> None:
    """Flow control is end to end: data is only acknowledged once the handler reads it."""
    gate = asyncio.Event()

    async def slow(request: HboneRequest, stream: HboneStream) -> None:
        await gate.wait()
        received = await read_all(stream)
        await stream.write(hashlib.sha256(received).hexdigest().encode())
        await stream.write_eof()

    harness.handler = slow
    payload = os.urandom(12 * 1024 * 1024)
    tunnel = await harness.connect()
    try:
        writing = asyncio.create_task(tunnel.write(payload))
        await asyncio.sleep(0.3)
        assert not writing.done(), "the writer should be blocked on the peer's flow-control window"
        gate.set()
        await writing
        await tunnel.write_eof()
        assert await read_all(tunnel) == hashlib.sha256(payload).hexdigest().encode()
    finally:
        await tunnel.close()


async def test_half_close_still_gets_the_reply(harness: Harness) -> None:
    async def count_then_reply(request: HboneRequest, stream: HboneStream) -> None:
        received = await read_all(stream)  # only ends because the client half-closed
        await stream.write(f"got {len(received)} bytes".encode())
        await stream.write_eof()

    harness.handler = count_then_reply
    tunnel = await harness.connect()
    try:
        await tunnel.write(b"x" * 100_000)
        await tunnel.write_eof()
        with pytest.raises(HboneError):
            await tunnel.write(b"more")
        assert await read_all(tunnel) == b"got 100000 bytes"
    finally:
        await tunnel.close()


async def test_pipe_propagates_half_close_end_to_end(harness: Harness) -> None:
    """app → TCP → pipe → HBONE → handler pipe → TCP backend that replies only after EOF."""

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    backend_server = await asyncio.start_server(backend, "127.0.0.1", 0)
    backend_port = backend_server.sockets[0].getsockname()[1]
    inbound: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    def report(task: asyncio.Future[tuple[int, int]]) -> None:
        if task.cancelled():
            inbound.cancel()
        elif (error := task.exception()) is not None:
            inbound.set_exception(error)
        else:
            inbound.set_result(task.result())

    async def to_backend(request: HboneRequest, stream: HboneStream) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", backend_port)
        # The server cancels its handlers once the client's tunnel is closed, which can be while
        # this pipe is still closing the backend socket; the pipe runs in its own task so that
        # the bytes it moved are reported whatever happens to the handler.
        piped = asyncio.ensure_future(pipe(stream, reader, writer))
        piped.add_done_callback(report)
        await asyncio.shield(piped)

    harness.handler = to_backend
    outbound: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    async def to_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tunnel = await harness.connect()
        outbound.set_result(await pipe(tunnel, reader, writer))

    listener = await asyncio.start_server(to_tunnel, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.sockets[0].getsockname()[1])
        writer.write(b"hello mesh " * 1000)
        writer.write_eof()
        assert await reader.read() == b"HELLO MESH " * 1000
        writer.close()
        assert await asyncio.wait_for(outbound, 30) == (11_000, 11_000)
        assert await asyncio.wait_for(inbound, 30) == (11_000, 11_000)
    finally:
        listener.close()
        backend_server.close()


async def test_two_streams_on_one_connection_are_both_served(harness: Harness) -> None:
    tunnel = await harness.connect()
    try:
        second = HboneStream(tunnel._conn, tunnel._conn.next_stream_id())
        await tunnel._conn.send_request(second, [(":method", "CONNECT"), (":authority", "10.0.0.8:9090")])
        await second.write(b"two")
        await tunnel.write(b"one")
        assert await second.read() == b"two"
        assert await tunnel.read() == b"one"
        await second.close()
    finally:
        await tunnel.close()
    assert [str(r.authority) for r in harness.requests] == [AUTHORITY, "10.0.0.8:9090"]


# Refusals after the handshake


async def test_authorize_refusal_raises_hbone_refused(harness: Harness) -> None:
    harness.status = 401
    with pytest.raises(HboneRefused, match="http status: 401 Unauthorized") as caught:
        await harness.connect()
    assert caught.value.status == 401
    assert harness.stats.streams_refused == 1
    harness.status = 503
    with pytest.raises(HboneRefused, match="http status: 503 Service Unavailable"):
        await harness.connect()


async def test_authorize_may_be_sync_and_may_fail(secrets: SecretManager) -> None:
    def deny(request: HboneRequest) -> int:
        if request.port == 1:
            raise RuntimeError("policy store broken")
        return 403

    server = await serve(
        "127.0.0.1",
        0,
        ssl_context_for=secrets.ssl_server_context(SERVER_ID),
        handler=echo,
        authorize=deny,
    )
    harness = Harness(secrets, port=server.sockets[0].getsockname()[1])
    try:
        with pytest.raises(HboneRefused, match="403 Forbidden"):
            await harness.connect()
        with pytest.raises(HboneRefused, match="500 Internal Server Error"):
            await harness.connect(authority="10.0.0.7:1")
    finally:
        await shutdown(server)


@pytest.mark.parametrize("authority", ["10.0.0.7", "10.0.0.7:0", "10.0.0.7:99999", "::1:80", "a b:80", ":80"])
async def test_malformed_authority_is_400(harness: Harness, authority: str) -> None:
    with pytest.raises(HboneRefused, match="400 Bad Request"):
        await harness.connect(authority=authority)
    assert harness.requests == []


async def test_methods_other_than_connect_are_405(harness: Harness) -> None:
    tunnel = await harness.connect()
    try:
        get = HboneStream(tunnel._conn, tunnel._conn.next_stream_id())
        request = [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", AUTHORITY)]
        await tunnel._conn.send_request(get, request)
        assert (await asyncio.wait_for(get.wait_headers(), 5))[":status"] == "405"
    finally:
        await tunnel.close()
    assert len(harness.requests) == 1  # only the CONNECT reached authorize


def test_parse_authority() -> None:
    assert parse_authority("10.0.0.7:8080") == ("10.0.0.7", 8080)
    assert parse_authority("[fd00::7]:15008") == ("fd00::7", 15008)
    assert str(parse_authority("[fd00::7]:15008")) == "[fd00::7]:15008"
    assert parse_authority("ledger.bank.svc.cluster.local:443") == ("ledger.bank.svc.cluster.local", 443)
    for bad in ["", "host", "host:", "host:http", "[fd00::7]", "[nope]:80", "300.1.1.1:80", "-x:80", "h:+80"]:
        with pytest.raises(ValueError, match="malformed authority"):
            parse_authority(bad)


# Refusals at the handshake: authorize is never called.


async def test_silent_server_times_out(secrets: SecretManager) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # never answers the TLS ClientHello

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    harness = Harness(secrets, port=server.sockets[0].getsockname()[1])
    try:
        with pytest.raises(HboneError, match="timed out"):
            await harness.connect(timeout=0.3)
    finally:
        server.close()
        for writer in accepted:
            writer.close()
            await writer.wait_closed()


async def test_client_cert_from_another_ca_is_refused_at_handshake(
    harness: Harness, ca: CertificateAuthority, tmp_path: Path
) -> None:
    other_ca = CertificateAuthority.load_or_create(tmp_path / "other-ca")
    impostor = SecretManager(signer_for(other_ca), other_ca.trust_bundle_pem, tmp_path / "impostor")
    await impostor.get(CLIENT_ID)
    # It trusts our root (so it could verify the server) but holds a cert from its own CA.
    context = client_context(impostor.credential_file(CLIENT_ID), None, ca.trust_bundle_pem)
    with pytest.raises(HboneError):
        await harness.connect(context)
    await harness.wait_for_handshake_error()
    assert harness.requests == []
    assert "certificate verify failed" in harness.handshake_errors[0][1]
    assert harness.stats.handshake_failures == 1


async def test_client_without_cert_is_refused_at_handshake(
    harness: Harness, ca: CertificateAuthority
) -> None:
    context = bare_context(ca.trust_bundle_pem, minimum_version=ssl.TLSVersion.TLSv1_3)
    with pytest.raises(HboneError):
        await harness.connect(context)
    await harness.wait_for_handshake_error()
    assert harness.requests == []
    assert "CERTIFICATE" in harness.handshake_errors[0][1].upper()


async def test_tls12_client_is_refused(
    harness: Harness, ca: CertificateAuthority, secrets: SecretManager
) -> None:
    context = bare_context(
        ca.trust_bundle_pem,
        cert=secrets.credential_file(CLIENT_ID),
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )
    with pytest.raises(HboneError):
        await harness.connect(context)
    await harness.wait_for_handshake_error()
    assert harness.requests == []
    assert "PROTOCOL" in harness.handshake_errors[0][1].upper()


async def test_client_without_h2_alpn_is_refused(
    harness: Harness, ca: CertificateAuthority, secrets: SecretManager
) -> None:
    context = bare_context(
        ca.trust_bundle_pem,
        cert=secrets.credential_file(CLIENT_ID),
        minimum_version=ssl.TLSVersion.TLSv1_3,
        alpn=["http/1.1"],
    )
    with pytest.raises(HboneError, match="ALPN"):
        await harness.connect(context)
    await harness.wait_for_handshake_error()
    assert "ALPN" in harness.handshake_errors[0][1]
    assert harness.requests == []


async def test_unexpected_server_identity_is_refused_by_the_client(harness: Harness) -> None:
    wrong = SpiffeId("cluster.local", "bank", "account-mcp")
    with pytest.raises(HboneError, match="not the expected"):
        await harness.connect(expected_identity=wrong)
    assert harness.requests == []
    tunnel = await harness.connect(expected_identity=None)  # any mesh identity will do
    assert tunnel.peer_identity == SERVER_ID
    await tunnel.close()


async def test_server_from_another_ca_is_refused_by_the_client(
    harness: Harness, ca: CertificateAuthority, tmp_path: Path
) -> None:
    other_ca = CertificateAuthority.load_or_create(tmp_path / "other-ca")
    outsider = SecretManager(signer_for(other_ca), other_ca.trust_bundle_pem, tmp_path / "outsider")
    await outsider.get(SERVER_ID)
    server = await serve(
        "127.0.0.1",
        0,
        ssl_context_for=lambda: outsider.ssl_server_context(SERVER_ID),
        handler=echo,
        authorize=lambda request: 200,
    )
    try:
        with pytest.raises(HboneError, match="certificate verify failed"):
            await open_tunnel(
                "127.0.0.1",
                server.sockets[0].getsockname()[1],
                authority=AUTHORITY,
                ssl_context=harness.secrets.ssl_client_context(CLIENT_ID),
                expected_identity=SERVER_ID,
                timeout=5,
            )
    finally:
        await shutdown(server)


# Rotation and lifecycle


async def server_cert(port: int, context: ssl.SSLContext) -> bytes:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return bytes(der)


async def test_rotated_server_cert_is_used_by_the_next_connection(harness: Harness) -> None:
    secrets = harness.secrets
    client = secrets.ssl_client_context(CLIENT_ID)
    before = await server_cert(harness.port, client)
    old = secrets.cached(SERVER_ID)
    assert old is not None
    assert SERVER_ID in await secrets.rotate_due(now=old.not_after)
    after = await server_cert(harness.port, client)
    assert after != before
    tunnel = await harness.connect()
    try:
        await tunnel.write(b"after rotation")
        assert await tunnel.read() == b"after rotation"
    finally:
        await tunnel.close()


async def test_peer_reset_surfaces_as_hbone_error(harness: Harness) -> None:
    async def abort(request: HboneRequest, stream: HboneStream) -> None:
        await stream.read()
        await stream.reset()

    harness.handler = abort
    tunnel = await harness.connect()
    try:
        await tunnel.write(b"hello")
        with pytest.raises(HboneError, match="reset"):
            await tunnel.read()
    finally:
        await tunnel.close()


async def test_shutdown_ends_live_tunnels(secrets: SecretManager) -> None:
    server = await serve(
        "127.0.0.1",
        0,
        ssl_context_for=secrets.ssl_server_context(SERVER_ID),
        handler=echo,
        authorize=lambda r: 200,
    )
    harness = Harness(secrets, port=server.sockets[0].getsockname()[1])
    tunnel = await harness.connect()
    try:
        await shutdown(server)
        async with asyncio.timeout(5):
            with pytest.raises(HboneError):
                await tunnel.read()
    finally:
        await tunnel.close()
