"""HTTP served straight off an HBONE stream, over real sockets: flow control, half-close, resets.

The waypoint runs as its process wires it (`harness.running`); callers are raw HBONE
tunnels speaking HTTP/1.1 through h11, so each test decides exactly when the caller
reads, half-closes or resets. One test drives `StreamTransport` alone on an HBONE
server, with a protocol that pauses reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import h11
import pytest

from tests.mesh.secrets import secrets_for
from tests.mesh.waypoint.harness import (
    ALICE,
    CHUNK,
    DEADLINE,
    WAYPOINT_ID,
    Waypoint,
    big_chunk,
    read_to_end,
    running,
)
from trustusbank.mesh.hbone import HboneRequest, HboneStream, Tunnel, open_tunnel, serve, shutdown
from trustusbank.mesh.identity import CertificateAuthority
from trustusbank.mesh.waypoint.tunnelhttp import HIGH_WATER, StreamTransport

HOST = b"wp.shop:8080"


@pytest.fixture
async def waypoint(tmp_path: Path) -> AsyncIterator[Waypoint]:
    async with running(tmp_path) as started:
        yield started


class Caller:
    """HTTP/1.1 (h11) on one raw tunnel: the test chooses every read, half-close and reset."""

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.h11 = h11.Connection(h11.CLIENT)

    async def send(self, method: str, path: str, body: bytes = b"", *, length: int | None = None) -> None:
        """The request's head and `body`; `length` (Content-Length) may promise more than is sent."""
        headers = [
            (b"host", HOST),
            (b"content-length", str(len(body) if length is None else length).encode()),
        ]
        data = self.h11.send(h11.Request(method=method, target=path, headers=headers))
        data += self.h11.send(h11.Data(data=body))
        if length is None:
            data += self.h11.send(h11.EndOfMessage())
        await self.tunnel.write(data)

    async def event(self) -> Any:
        while (event := self.h11.next_event()) is h11.NEED_DATA:
            self.h11.receive_data(await self.tunnel.read())
        return event

    async def head(self) -> h11.Response:
        event = await self.event()
        assert isinstance(event, h11.Response), event
        return event

    async def body(self) -> bytes:
        data = bytearray()
        while not isinstance(event := await self.event(), h11.EndOfMessage):
            assert isinstance(event, h11.Data), event
            data += event.data
        return bytes(data)

    async def get(self, path: str) -> tuple[int, bytes]:
        await self.send("GET", path)
        status = (await self.head()).status_code
        body = await self.body()
        self.h11.start_next_cycle()
        return status, body


async def until(condition: Callable[[], object]) -> None:
    """Wait for a condition another task brings about (DEADLINE guards a hang; never a speed test)."""
    async with asyncio.timeout(DEADLINE):
        while not condition():  # noqa: ASYNC110 - log files and uvicorn's flags offer no event
            await asyncio.sleep(0.005)


async def logged(waypoint: Waypoint, path: str) -> dict[str, Any]:
    """The waypoint's log line for `path`, once it is written."""
    await until(lambda: any(line["http.path"] == path for line in waypoint.lines()))
    [line] = [line for line in waypoint.lines() if line["http.path"] == path]
    return line


async def test_many_sequential_requests_are_served_on_one_tunnel(waypoint: Waypoint) -> None:
    """Keep-alive: one tunnel carries a hundred requests in turn, each answered and logged as the tunnel's."""
    caller = Caller(await waypoint.tunnel(ALICE))
    async with asyncio.timeout(DEADLINE):
        answers = [await caller.get(f"/echo/{n}") for n in range(100)]
    await caller.tunnel.close()
    assert answers == [(200, f"/echo/{n}".encode()) for n in range(100)]
    assert [line["src.identity"] for line in waypoint.lines()] == [ALICE.uri] * 100


async def test_a_caller_that_half_closes_after_its_request_still_gets_the_answer(waypoint: Waypoint) -> None:
    """END_STREAM after a complete request: it is answered, then the waypoint ends the stream too."""
    caller = Caller(await waypoint.tunnel(ALICE))
    await caller.send("GET", "/echo/last")
    await caller.tunnel.write_eof()
    async with asyncio.timeout(DEADLINE):
        head = await caller.head()
        body = await caller.body()
        rest = await caller.tunnel.read()  # b"": the waypoint half-closed in turn
    await caller.tunnel.close()
    assert (head.status_code, body, rest) == (200, b"/echo/last", b"")
    assert [(line["http.path"], line["http.status"]) for line in waypoint.lines()] == [("/echo/last", 200)]


@pytest.mark.parametrize("leaves", ["half-closes", "resets"])
async def test_a_caller_that_leaves_mid_body_gets_nothing_forwarded(waypoint: Waypoint, leaves: str) -> None:
    """A body cut short by END_STREAM or RST_STREAM never reaches the backend; the request is on record."""
    caller = Caller(await waypoint.tunnel(ALICE))
    await caller.send("POST", "/echo/cut", b'{"jsonrpc": "2.0", ', length=1000)
    if leaves == "half-closes":
        await caller.tunnel.write_eof()
        async with asyncio.timeout(DEADLINE):
            answer = await read_to_end(caller.tunnel)  # ends: the waypoint closes, answering nothing
        assert answer == b""
    await caller.tunnel.close()

    line = await logged(waypoint, "/echo/cut")
    assert (line["decision"], line["http.status"], line["src.identity"]) == ("error", 499, ALICE.uri)
    assert line["reason"] == "the client went away before its request's body ended"
    assert waypoint.echo.requests == []
    await until(lambda: not waypoint.ingress.callers)  # the tunnel's caller is gone with it


async def test_a_tunnel_closing_while_a_response_streams_ends_the_upstream_request(
    waypoint: Waypoint,
) -> None:
    """The caller resets mid-SSE: the waypoint ends its request to the backend instead of draining it."""
    caller = Caller(await waypoint.tunnel(ALICE))
    await caller.send("GET", "/sse")
    async with asyncio.timeout(DEADLINE):
        assert (await caller.head()).status_code == 200
        event = await caller.event()
    assert isinstance(event, h11.Data)
    assert event.data == b"data: one\n\n"
    await caller.tunnel.close()

    async with asyncio.timeout(DEADLINE):
        await waypoint.echo.disconnected.wait()  # the backend saw its request end, not `release`
    line = await logged(waypoint, "/sse")
    assert (line["decision"], line["http.status"]) == ("error", 499)
    assert line["reason"] == "the client went away while its answer was on the way"


async def test_a_slow_reader_holds_the_backend_back_and_then_gets_every_byte(waypoint: Waypoint) -> None:
    """Back-pressure end to end: the caller stops reading, the waypoint pauses, the backend waits."""
    mib = 32
    caller = Caller(await waypoint.tunnel(ALICE))
    await caller.send("GET", f"/big/{mib}")
    async with asyncio.timeout(DEADLINE):
        assert (await caller.head()).status_code == 200
    connections = waypoint.http.server.server_state.connections

    def writing_paused() -> bool:
        return any(connection.flow.write_paused for connection in connections)  # type: ignore[attr-defined]

    await until(writing_paused)  # the caller's window is spent: uvicorn waits before each send
    [connection] = connections
    transport = connection.transport  # type: ignore[attr-defined]
    assert isinstance(transport, StreamTransport)
    assert transport.get_write_buffer_size() <= HIGH_WATER + 2 * CHUNK  # no unbounded buffer
    assert waypoint.echo.sent < mib * 1024 * 1024  # the backend is held back, not drained into memory

    async with asyncio.timeout(DEADLINE):
        body = await caller.body()
    await caller.tunnel.close()
    assert len(body) == mib * 1024 * 1024
    assert body == b"".join(big_chunk(n) for n in range(len(body) // CHUNK))
    assert not writing_paused()


class PausingProtocol(asyncio.Protocol):
    """Pauses reading after its first data, and records what arrives (and whether while paused)."""

    def __init__(self) -> None:
        self.transport: StreamTransport | None = None
        self.received = bytearray()
        self.calls = 0
        self.eof = asyncio.Event()
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, StreamTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        assert self.transport.is_reading(), "data arrived while reading was paused"
        self.calls += 1
        self.received += data
        if self.calls == 1:
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self.eof.set()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


async def test_pause_reading_stops_delivery_and_the_sender_is_held_by_the_window(tmp_path: Path) -> None:
    """While paused nothing is delivered and the sender runs out of window; on resume all of it arrives."""
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    secrets = await secrets_for(ca, tmp_path / "certs", WAYPOINT_ID, ALICE)
    protocol = PausingProtocol()
    streams: list[HboneStream] = []

    async def handler(request: HboneRequest, stream: HboneStream) -> None:
        streams.append(stream)
        await StreamTransport(stream).serve(protocol)

    server = await serve(
        "127.0.0.1",
        0,
        ssl_context_for=secrets.ssl_server_context(WAYPOINT_ID),
        handler=handler,
        authorize=lambda request: 200,
    )
    total = 8 * 1024 * 1024  # twice the stream's flow-control window
    written = 0
    try:
        tunnel = await open_tunnel(
            "127.0.0.1",
            server.sockets[0].getsockname()[1],
            authority="127.0.0.1:8080",
            ssl_context=secrets.ssl_client_context(ALICE),
            expected_identity=WAYPOINT_ID,
        )

        async def send() -> None:
            nonlocal written
            for n in range(total // CHUNK):
                await tunnel.write(big_chunk(n))
                written += CHUNK
            await tunnel.write_eof()

        sending = asyncio.create_task(send())
        # Paused, and more has arrived that a read would return at once: it is being held back.
        await until(lambda: protocol.calls == 1 and written >= 2 * 1024 * 1024 and streams[0].readable)
        first = protocol.calls, len(protocol.received)
        assert protocol.transport is not None
        assert not protocol.transport.is_reading()
        assert first[0] == 1
        assert first[1] <= CHUNK
        assert not sending.done()  # 8 MiB cannot all be sent into a 4 MiB window nobody reads

        protocol.transport.resume_reading()
        async with asyncio.timeout(DEADLINE):
            await sending
            await protocol.eof.wait()
            await protocol.lost.wait()
        assert bytes(protocol.received) == b"".join(big_chunk(n) for n in range(total // CHUNK))
        await tunnel.close()
    finally:
        await shutdown(server)


async def test_shutdown_lets_a_streaming_answer_finish_then_ends_the_tunnel(waypoint: Waypoint) -> None:
    """Graceful shutdown drains: the answer on its way completes, then the waypoint ends the stream."""
    caller = Caller(await waypoint.tunnel(ALICE))
    await caller.send("GET", "/sse")
    async with asyncio.timeout(DEADLINE):
        assert (await caller.head()).status_code == 200
        first = await caller.event()
    assert isinstance(first, h11.Data)
    connections = waypoint.http.server.server_state.connections
    [connection] = connections

    waypoint.http.exit()
    await until(lambda: not connection.cycle.keep_alive)  # type: ignore[attr-defined]
    waypoint.echo.release.set()
    async with asyncio.timeout(DEADLINE):
        rest = await caller.body()
        end = await caller.tunnel.read()
    await caller.tunnel.close()
    assert first.data + rest == b"data: one\n\ndata: two\n\n"
    assert end == b""  # END_STREAM once the answer was complete
    await until(lambda: not connections)
    [line] = waypoint.lines()
    assert (line["http.path"], line["decision"], line["http.status"]) == ("/sse", "allow", 200)
