"""The waypoint's HTTP layer, reachable only through an HBONE tunnel: it has no listening socket.

uvicorn's own HTTP/1.1 protocol (h11) is served straight off each tunnel's
HTTP/2 stream: `StreamTransport` is an `asyncio.Transport` whose bytes are the
stream's, so there is no second socket, no copy through the kernel and no pipe
task between the tunnel and the protocol. The protocol is told, when it is made,
which tunnel it serves, and puts that key in every request's scope
(`scope["extensions"][TUNNEL]`). So the caller's identity follows the tunnel the
bytes came through, never an address, port or header a local process or a client
could choose, and nothing else can reach the proxy.

uvicorn still runs the ASGI lifespan, the Date header, the keep-alive timeout and
graceful shutdown: it is started with an empty list of sockets, so it opens no
listener of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from trustusbank.http_server import uvicorn_config
from trustusbank.mesh.hbone.h2 import READ_CHUNK, ByteStream, HboneError

log = logging.getLogger(__name__)

App = Callable[[Any, Any, Any], Awaitable[None]]

TUNNEL = "trustusbank.tunnel"
"""The scope extension naming the tunnel a request arrived on (an int the waypoint assigned)."""

HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024


def tunnel_of(scope: dict[str, Any]) -> int | None:
    """The tunnel key the HTTP layer put in this request's scope, or None."""
    extensions = scope.get("extensions")
    key = extensions.get(TUNNEL) if isinstance(extensions, dict) else None
    return key if isinstance(key, int) and not isinstance(key, bool) else None


class StreamTransport(asyncio.Transport):
    """An `asyncio.Transport` over one tunnel stream, for a protocol that expects a socket.

    Reads feed `data_received` (and stop while the protocol paused reading, so the
    stream's flow-control window, acknowledged only as we read, throttles the
    sender); writes are sent in order by one flushing task, with `pause_writing`
    above HIGH_WATER bytes not yet sent. `close` sends what is buffered, then
    END_STREAM; `abort` resets the stream. `connection_lost` is called once, after
    which `serve` returns.
    """

    def __init__(self, stream: ByteStream, extra: dict[str, Any] | None = None) -> None:
        super().__init__(extra)
        self._stream = stream
        self._protocol: asyncio.BaseProtocol | None = None
        self._buffer = bytearray()
        self._in_flight = 0
        self._flusher: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._can_read = asyncio.Event()
        self._can_read.set()
        self._write_paused = False
        self._closing = False
        self._eof_written = False
        self._eof_sent = False
        self._lost = asyncio.get_running_loop().create_future()

    async def serve(self, protocol: asyncio.Protocol) -> None:
        """Run `protocol` on the stream until the connection is lost (by either side)."""
        self._protocol = protocol
        protocol.connection_made(self)
        self._reader = asyncio.create_task(self._read())
        try:
            await asyncio.shield(self._lost)
        finally:
            tasks = [t for t in (self._reader, self._flusher) if t is not None and not t.done()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not self._lost.done():  # cancelled from outside: the tunnel is going away
                self._connection_lost(ConnectionAbortedError("the tunnel closed"))
                await self._stream.close()

    async def _read(self) -> None:
        protocol = self._protocol
        assert isinstance(protocol, asyncio.Protocol)
        try:
            while not self._closing:
                await self._can_read.wait()
                data = await self._stream.read(READ_CHUNK)
                await self._can_read.wait()  # paused while we waited: deliver after resume_reading
                if self._closing:
                    return
                if not data:
                    if not protocol.eof_received():
                        self.close()
                    return
                protocol.data_received(data)
        except HboneError as exc:
            self._fail(exc)
        except Exception as exc:  # a protocol bug: end this connection, never the waypoint
            log.exception("HTTP on a tunnel failed")
            self._fail(exc)

    # Reading.

    def is_reading(self) -> bool:
        return self._can_read.is_set() and not self._closing

    def pause_reading(self) -> None:
        self._can_read.clear()

    def resume_reading(self) -> None:
        self._can_read.set()

    # Writing.

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._eof_written:
            return
        if not data:
            return
        self._buffer += data
        self._start_flush()
        if not self._write_paused and self.get_write_buffer_size() > HIGH_WATER:
            self._write_paused = True
            self._call("pause_writing")

    def write_eof(self) -> None:
        if self._eof_written:
            return
        self._eof_written = True
        self._start_flush()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return len(self._buffer) + self._in_flight

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return LOW_WATER, HIGH_WATER

    def _start_flush(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                self._in_flight = len(data)
                await self._stream.write(data)
                self._in_flight = 0
                if self._write_paused and self.get_write_buffer_size() <= LOW_WATER:
                    self._write_paused = False
                    self._call("resume_writing")
            if (self._eof_written or self._closing) and not self._eof_sent:
                self._eof_sent = True
                await self._stream.write_eof()
            if self._closing:
                self._connection_lost(None)
        except HboneError as exc:
            self._fail(exc)

    # Closing.

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Send what is buffered, then END_STREAM; `connection_lost(None)` follows."""
        if self._closing:
            return
        self._closing = True
        self._can_read.set()  # a paused reader wakes and ends
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        self._start_flush()

    def abort(self) -> None:
        self._fail(None)

    def _fail(self, exc: BaseException | None) -> None:
        """The stream broke or we abandon it: drop the buffer, reset the stream, tell the protocol."""
        self._closing = True
        self._buffer.clear()
        if self._flusher is not None and self._flusher is not asyncio.current_task():
            self._flusher.cancel()
        self._connection_lost(exc if isinstance(exc, Exception) or exc is None else None)
        task = asyncio.ensure_future(self._stream.close())  # RST_STREAM unless both sides ended
        task.add_done_callback(_ignore_result)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost.done():
            return
        self._lost.set_result(None)
        self._call("connection_lost", exc)

    def _call(self, method: str, *args: Any) -> None:
        if self._protocol is None:
            return
        try:
            getattr(self._protocol, method)(*args)
        except Exception:
            log.exception("HTTP protocol %s failed", method)

    # The rest of the Transport interface.

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        raise NotImplementedError("the tunnel's write limits are fixed")


def _ignore_result(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()


class _TunnelProtocol(H11Protocol):
    """uvicorn's h11 protocol for one tunnel; its requests' scopes carry the tunnel key."""

    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any], tunnel: int
    ) -> None:
        super().__init__(config, server_state, app_state)
        self.tunnel = tunnel

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _on_tunnel(self.app, self.tunnel)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        """The caller half-closed: answer the request it finished sending, then close.

        A request still missing body bytes can never complete: the connection closes now
        and the request sees a disconnect, as on a socket.
        """
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            cycle.keep_alive = False
            return True
        return None


def _on_tunnel(app: App, tunnel: int) -> App:
    async def tagged(scope: Any, receive: Any, send: Any) -> None:
        scope["extensions"] = {**(scope.get("extensions") or {}), TUNNEL: tunnel}
        await app(scope, receive, send)

    return tagged


class TunnelHttp:
    """uvicorn without a listener; `serve_tunnel(key, stream)` serves HTTP/1.1 on one tunnel."""

    def __init__(self, app: App, *, timeout_keep_alive: int = 5) -> None:
        # proxy_headers off (uvicorn_config): X-Forwarded-For must never rewrite the scope.
        config = uvicorn_config(
            app,
            http="h11",
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_keep_alive=timeout_keep_alive,
        )
        self.server = uvicorn.Server(config)

    @property
    def started(self) -> bool:
        return self.server.started

    async def serve(self) -> None:
        """Lifespan, then serve tunnels until `should_exit`; no socket is ever bound."""
        await self.server.serve(sockets=[])

    def exit(self) -> None:
        self.server.should_exit = True

    async def serve_tunnel(
        self,
        tunnel: int,
        stream: ByteStream,
        *,
        peer: tuple[str, int] | None = None,
        local: tuple[str, int] | None = None,
    ) -> None:
        """HTTP/1.1 for `tunnel` on `stream` until either side closes; the stream is closed on return."""
        if not self.server.started:
            raise RuntimeError("the waypoint's HTTP layer is not serving yet")
        server = self.server
        protocol = _TunnelProtocol(server.config, server.server_state, server.lifespan.state, tunnel)
        transport = StreamTransport(stream, {"peername": peer, "sockname": local})
        try:
            await transport.serve(protocol)
        finally:
            with contextlib.suppress(HboneError):
                await stream.close()
