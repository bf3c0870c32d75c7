"""The HTTP/2 machinery HBONE's client and server share.

`HboneConnection` drives one h2 connection over an asyncio stream pair, and `HboneStream`
turns one HTTP/2 stream into a byte pipe with TCP-like read/write/half-close. Flow control
is end to end: received data is acknowledged only when the application reads it, so a slow
reader throttles the sender instead of growing a buffer. `pipe` joins two byte streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterator
from http import HTTPStatus
from types import TracebackType
from typing import Protocol

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hpack.struct import Header

from trustusbank.errors import RefusedError, UnavailableError
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.identity.svid import peer_identity as _peer_identity

log = logging.getLogger(__name__)

READ_CHUNK = 65536
# Windows well above the 64 KiB default: a tunnel moves at most one window per round trip.
STREAM_WINDOW = 4 * 1024 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
MAX_FRAME = 64 * 1024
DEFAULT_WINDOW = 65535
CLOSE_TIMEOUT = 2.0


class HboneError(UnavailableError):
    """A tunnel could not be opened, or broke."""


class HboneUnsent(HboneError):
    """The CONNECT never reached the server (its connection was gone, or full): safe to send elsewhere."""


class HboneRefused(HboneError, RefusedError):
    """The server answered the CONNECT with a non-2xx status (e.g. denied by policy)."""

    def __init__(self, status: int) -> None:
        self.status = status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown Status"
        super().__init__(f"http status: {status} {phrase}")


class ByteStream(Protocol):
    """What `pipe` needs: a Tunnel on the client, an HboneStream in a server handler."""

    async def read(self, n: int = READ_CHUNK) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def write_eof(self) -> None: ...

    async def close(self) -> None: ...


def decode_headers(headers: list[Header]) -> list[tuple[str, str]]:
    return [
        (bytes(name).decode("utf-8", "replace").lower(), bytes(value).decode("utf-8", "replace"))
        for name, value in headers
    ]


def header_dict(headers: list[tuple[str, str]], *, pseudo: bool) -> dict[str, str]:
    """Pseudo-headers or regular headers as a dict; repeated fields are joined with ', '."""
    result: dict[str, str] = {}
    for name, value in headers:
        if name.startswith(":") != pseudo:
            continue
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


def describe_error(exc: BaseException) -> str:
    """A short reason for logs: the OpenSSL reason or verify message rather than the full repr."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _code_name(code: ErrorCodes | int | None) -> str:
    return code.name if isinstance(code, ErrorCodes) else str(code)


class HboneStream:
    """One HTTP/2 stream as a byte pipe: read until b"" (peer's END_STREAM), write, half-close."""

    def __init__(self, connection: HboneConnection, stream_id: int) -> None:
        self._conn = connection
        self.stream_id = stream_id
        self._buffer = bytearray()
        self._changed = asyncio.Event()
        self._remote_ended = False
        self._local_ended = False
        self._error: str | None = None
        self._closed = False
        self._headers: list[tuple[str, str]] | None = None
        # The peer's RST_STREAM code, if it reset the stream (REFUSED_STREAM: it never processed it).
        self.reset_code: ErrorCodes | int | None = None

    @property
    def peer_identity(self) -> SpiffeId | None:
        """The peer's SPIFFE ID from its verified certificate."""
        return self._conn.peer_identity

    @property
    def peer_addr(self) -> tuple[str, int] | None:
        return self._conn.peer_addr

    @property
    def local_addr(self) -> tuple[str, int] | None:
        return self._conn.local_addr

    @property
    def headers(self) -> dict[str, str]:
        """What the peer sent: the request on the server, the response on the client (lower-case)."""
        return dict(self._headers or [])

    @property
    def readable(self) -> bool:
        """Whether a read would return at once: data, end of stream, or an error waiting.

        A pool uses this on an idle stream to notice that the peer has gone.
        """
        return bool(self._buffer) or self._remote_ended or self._error is not None

    async def wait_headers(self) -> dict[str, str]:
        """Wait for the peer's header block (on a client stream: the response)."""
        while self._headers is None:
            self._check()
            self._changed.clear()
            await self._changed.wait()
        return self.headers

    async def read(self, n: int = READ_CHUNK) -> bytes:
        """Up to `n` bytes; b"" once the peer half-closed. Raises HboneError if the stream broke."""
        if n <= 0:
            raise ValueError("n must be positive")
        while not self._buffer:
            if self._remote_ended:
                return b""
            if self._error is not None:
                raise HboneError(self._error)
            self._changed.clear()
            await self._changed.wait()
        chunk = bytes(self._buffer[:n])
        del self._buffer[:n]
        # Acknowledging on consumption (not receipt) is what makes the window real backpressure.
        await self._conn.acknowledge(self.stream_id, len(chunk))
        return chunk

    async def write(self, data: bytes) -> None:
        """Send `data`, waiting for the peer's flow-control window as needed."""
        if self._local_ended:
            raise HboneError("write after write_eof() or close()")
        self._check()
        if data:
            await self._conn.send_data(self, data)

    async def write_eof(self) -> None:
        """Half-close: END_STREAM; the peer reads b"" while we can still read its reply."""
        if self._local_ended:
            return
        self._check()
        self._local_ended = True
        await self._conn.end_stream(self)

    async def close(self) -> None:
        """Finish with the stream: end it if the peer already did, otherwise reset it.

        RST_STREAM is NO_ERROR if we had already half-closed ("stop sending"), CANCEL
        if we abandon the stream in both directions.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._error is None and not (self._local_ended and self._remote_ended):
                if self._remote_ended:
                    self._local_ended = True
                    await self._conn.end_stream(self)
                else:
                    code = ErrorCodes.NO_ERROR if self._local_ended else ErrorCodes.CANCEL
                    await self._conn.reset_stream(self, code)
        except HboneError:
            pass
        finally:
            self._fail("stream closed")
            self._conn.discard(self)

    async def respond(self, status: int, *, end_stream: bool = False) -> None:
        """Server side: answer the CONNECT; a refusal also ends our side of the stream."""
        await self._conn.send_response(self, status, end_stream=end_stream)

    async def reset(self, code: ErrorCodes = ErrorCodes.CANCEL) -> None:
        """Abort the stream with RST_STREAM(`code`)."""
        if self._error is None:
            with contextlib.suppress(HboneError):
                await self._conn.reset_stream(self, code)
            self._fail(f"stream reset locally ({code.name})")

    async def __aenter__(self) -> HboneStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _check(self) -> None:
        if self._error is not None:
            raise HboneError(self._error)

    # Called by the connection's reader.

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        self._changed.set()

    def _end(self) -> None:
        self._remote_ended = True
        self._changed.set()

    def _set_headers(self, headers: list[tuple[str, str]]) -> None:
        self._headers = headers
        self._changed.set()

    def _fail(self, reason: str) -> None:
        if self._error is None:
            self._error = reason
        self._changed.set()


# h2 remembers how each of a connection's last 65,536 closed streams ended (about 100 bytes
# each, on both sides), to answer a frame that arrives after the close. A pooled connection
# carries one tunnel per stream for as long as it lives, so that was up to ~6 MB per connection
# and side, the node proxies' growth under load. A frame for a stream forgotten this long is
# still answered (RST_STREAM) or ignored as h2 does for a closed one, except a HEADERS frame
# on a stream we reset, which then ends the connection.
CLOSED_STREAMS_KEPT = 4096


class _H2Connection(h2.connection.H2Connection):
    """h2's connection state machine, remembering only the latest `kept` closed streams."""

    def __init__(self, config: h2.config.H2Configuration, kept: int) -> None:
        self.MAX_CLOSED_STREAMS = kept  # read by h2's __init__; the class default is 2**16
        super().__init__(config)


class HboneConnection:
    """Drives one HTTP/2 connection over an established TLS stream pair.

    A background task reads frames and dispatches them to streams; writers send
    DATA only within the peer's window and wait for WINDOW_UPDATE otherwise. Any
    transport or protocol failure fails every open stream with the reason.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_side: bool,
        on_request: Callable[[HboneStream, list[tuple[str, str]]], None] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.client_side = client_side
        self._on_request = on_request
        self._h2 = _H2Connection(
            h2.config.H2Configuration(client_side=client_side, header_encoding=None), CLOSED_STREAMS_KEPT
        )
        self._streams: dict[int, HboneStream] = {}
        self._window_open = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._settings_received = asyncio.Event()
        self._write_scheduled = False
        self.closed_reason: str | None = None
        # From the peer's GOAWAY: streams above it were never processed.
        self.goaway_last_stream_id: int | None = None
        ssl_object = writer.get_extra_info("ssl_object")
        self.peer_identity: SpiffeId | None = _peer_identity(ssl_object) if ssl_object else None
        peername = writer.get_extra_info("peername")
        self.peer_addr: tuple[str, int] | None = (peername[0], peername[1]) if peername else None
        sockname = writer.get_extra_info("sockname")
        self.local_addr: tuple[str, int] | None = (sockname[0], sockname[1]) if sockname else None

    @property
    def is_closed(self) -> bool:
        return self.closed_reason is not None or self._writer.is_closing()

    @property
    def closed_streams_remembered(self) -> int:
        """How many closed streams h2 still remembers (at most CLOSED_STREAMS_KEPT)."""
        return len(self._h2._closed_streams)

    @property
    def max_concurrent_streams(self) -> int:
        """How many streams the peer lets us open at once (its SETTINGS_MAX_CONCURRENT_STREAMS)."""
        return int(self._h2.remote_settings.max_concurrent_streams)

    async def wait_settings(self) -> None:
        """Wait for the peer's first SETTINGS frame (so `max_concurrent_streams` is the peer's own)."""
        while not self._settings_received.is_set():
            self._check_open()
            waiter = asyncio.ensure_future(self._settings_received.wait())
            closed = asyncio.ensure_future(self.wait_closed())
            try:
                await asyncio.wait((waiter, closed), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                closed.cancel()
            if not self._settings_received.is_set():
                self._check_open()
                raise HboneError(self.closed_reason or "connection closed before SETTINGS")

    def unprocessed(self, stream: HboneStream) -> bool:
        """Whether the peer said it never processed `stream`: REFUSED_STREAM, or above its GOAWAY."""
        if stream.reset_code == ErrorCodes.REFUSED_STREAM:
            return True
        last = self.goaway_last_stream_id
        return last is not None and stream.stream_id > last

    async def start(self) -> None:
        """Send the preface and our settings, then start reading in the background."""
        self._h2.initiate_connection()
        settings: dict[SettingCodes | int, int] = {
            SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            SettingCodes.MAX_FRAME_SIZE: MAX_FRAME,
        }
        if self.client_side:
            settings[SettingCodes.ENABLE_PUSH] = 0
        self._h2.update_settings(settings)
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - DEFAULT_WINDOW)
        await self._flush_now()
        self._task = asyncio.create_task(self._run(), name=f"hbone-reader-{self.peer_addr}")

    async def wait_closed(self) -> None:
        """Return once the connection is gone (peer closed, error, or close())."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def close(self, code: ErrorCodes = ErrorCodes.NO_ERROR) -> None:
        """GOAWAY, close the TLS connection, stop the reader; open streams fail."""
        if not self.is_closed:
            if self._task is not None:  # the preface went out, so a GOAWAY may follow
                with contextlib.suppress(h2.exceptions.H2Error):
                    self._h2.close_connection(code)
                with contextlib.suppress(HboneError):
                    await self._flush_now()
            self._terminate("connection closed locally")
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_transport()

    async def _close_transport(self) -> None:
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_TIMEOUT)
        except (OSError, TimeoutError):
            self._writer.transport.abort()

    # Stream operations.

    def next_stream_id(self) -> int:
        return self._h2.get_next_available_stream_id()

    async def send_request(self, stream: HboneStream, headers: list[tuple[str, str]]) -> None:
        """Open `stream` with its request headers; HboneUnsent if they could not go out at all."""
        if self.is_closed:
            raise HboneUnsent(self.closed_reason or "connection closing")
        try:
            self._h2.send_headers(stream.stream_id, headers, end_stream=False)
        except h2.exceptions.TooManyStreamsError as exc:
            raise HboneUnsent(f"peer allows no more streams: {exc}") from exc
        except h2.exceptions.H2Error as exc:
            raise HboneUnsent(f"HTTP/2 error: {exc}") from exc
        self._streams[stream.stream_id] = stream
        await self._flush()

    async def send_response(self, stream: HboneStream, status: int, *, end_stream: bool) -> None:
        self._check_open()
        with self._h2_errors(stream):
            self._h2.send_headers(stream.stream_id, [(":status", str(status))], end_stream=end_stream)
        if end_stream:
            stream._local_ended = True
        await self._flush()

    async def send_data(self, stream: HboneStream, data: bytes) -> None:
        view = memoryview(data)
        while view:
            stream._check()
            self._check_open()
            with self._h2_errors(stream):
                window = self._h2.local_flow_control_window(stream.stream_id)
            if window <= 0:
                # Captured before awaiting, so a WINDOW_UPDATE cannot slip in unnoticed.
                await self._window_open.wait()
                continue
            with self._h2_errors(stream):
                while view and window > 0:
                    size = min(window, len(view), self._h2.max_outbound_frame_size)
                    self._h2.send_data(stream.stream_id, view[:size].tobytes())
                    view = view[size:]
                    window -= size
            await self._flush()

    async def end_stream(self, stream: HboneStream) -> None:
        self._check_open()
        with self._h2_errors(stream):
            self._h2.end_stream(stream.stream_id)
        await self._flush()

    async def reset_stream(self, stream: HboneStream, code: ErrorCodes) -> None:
        self._check_open()
        with self._h2_errors(stream):
            self._h2.reset_stream(stream.stream_id, code)
        await self._flush()

    async def acknowledge(self, stream_id: int, size: int) -> None:
        if self.is_closed or size <= 0:
            return
        self._h2.acknowledge_received_data(size, stream_id)
        with contextlib.suppress(HboneError):
            await self._flush()

    def discard(self, stream: HboneStream) -> None:
        if self._streams.get(stream.stream_id) is stream:
            del self._streams[stream.stream_id]

    # Internals.

    def _check_open(self) -> None:
        if self.closed_reason is not None:
            raise HboneError(self.closed_reason)

    @contextlib.contextmanager
    def _h2_errors(self, stream: HboneStream) -> Iterator[None]:
        try:
            yield
        except h2.exceptions.StreamClosedError as exc:
            stream._fail("stream closed by peer")
            raise HboneError(stream._error) from exc
        except h2.exceptions.H2Error as exc:
            raise HboneError(f"HTTP/2 error: {exc}") from exc

    async def _flush(self) -> None:
        """Send what h2 queued at the end of this event-loop pass, then wait if the socket is backed up.

        Deferring the write lets the frames of every stream that wrote in the same pass
        (a pooled connection's many tunnels) go out as one TLS record and one send().
        """
        if not self._write_scheduled:
            self._write_scheduled = True
            asyncio.get_running_loop().call_soon(self._write_pending)
        await self._drain()

    async def _flush_now(self) -> None:
        """Send what h2 queued at once: the preface, and a GOAWAY the connection closes after."""
        self._write_pending()
        await self._drain()

    def _write_pending(self) -> None:
        self._write_scheduled = False
        data = self._h2.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _drain(self) -> None:
        if self._writer.is_closing():
            return
        try:
            await self._writer.drain()
        except OSError as exc:
            self._terminate(f"connection lost: {describe_error(exc)}")
            raise HboneError(self.closed_reason) from exc

    def _wake_writers(self) -> None:
        self._window_open.set()
        self._window_open = asyncio.Event()

    def _terminate(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        for stream in list(self._streams.values()):
            stream._fail(self.closed_reason)
        self._wake_writers()

    async def _run(self) -> None:
        reason = "connection closed by peer"
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    break
                try:
                    events = self._h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    reason = f"HTTP/2 protocol error: {exc}"
                    with contextlib.suppress(HboneError):
                        await self._flush_now()  # h2 queued a GOAWAY
                    break
                for event in events:
                    self._dispatch(event)
                await self._flush()
                if self.is_closed:
                    break
        except (OSError, HboneError) as exc:
            reason = f"connection lost: {describe_error(exc)}"
        finally:
            self._terminate(reason)
            self._writer.close()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request_received(event)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._set_headers(decode_headers(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._end()
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                stream.reset_code = event.error_code
                stream._fail(f"stream reset by peer ({_code_name(event.error_code)})")
            self._wake_writers()
        elif isinstance(event, h2.events.WindowUpdated):
            self._wake_writers()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._settings_received.set()
            self._wake_writers()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway_last_stream_id = event.last_stream_id
            self._terminate(f"peer closed the connection (GOAWAY {_code_name(event.error_code)})")

    def _on_request_received(self, event: h2.events.RequestReceived) -> None:
        if self.client_side or self._on_request is None:
            self._h2.reset_stream(event.stream_id, ErrorCodes.REFUSED_STREAM)
            return
        stream = HboneStream(self, event.stream_id)
        self._streams[event.stream_id] = stream
        headers = decode_headers(event.headers)
        stream._set_headers(headers)
        if event.stream_ended is not None:
            stream._end()
        self._on_request(stream, headers)

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None or stream._closed:
            # Nobody will read it: hand the window straight back.
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            return
        stream._feed(event.data)
        padding = event.flow_controlled_length - len(event.data)
        if padding:
            self._h2.acknowledge_received_data(padding, event.stream_id)


async def pipe(
    tunnel: ByteStream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, int]:
    """Copy reader→tunnel and tunnel→writer until both directions reached EOF, then close both.

    EOF in either direction is passed on as a half-close (write_eof), so a client
    that shuts down its sending side still gets the reply. If one direction fails
    the other is cancelled and the error raised. Either way the tunnel and `writer`
    are closed on return. Returns (bytes sent into the tunnel, bytes received from it).
    """

    async def upstream() -> int:
        sent = 0
        while data := await reader.read(READ_CHUNK):
            await tunnel.write(data)
            sent += len(data)
        await tunnel.write_eof()
        return sent

    async def downstream() -> int:
        received = 0
        while data := await tunnel.read(READ_CHUNK):
            writer.write(data)
            await writer.drain()
            received += len(data)
        if writer.can_write_eof():
            writer.write_eof()
        return received

    up = asyncio.create_task(upstream())
    down = asyncio.create_task(downstream())
    try:
        done, _ = await asyncio.wait((up, down), return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
        return up.result(), down.result()
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        await tunnel.close()
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)
