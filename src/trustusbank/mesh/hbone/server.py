"""HBONE server (port 15008): accept mutual-TLS HTTP/2 CONNECT streams, authorize, hand them off.

The listener is plain TCP and TLS is started per accepted connection with the
context `ssl_context_for()` returns at that moment, so a rotated certificate is
used by the next connection without a restart, and handshake failures (no client
cert, foreign CA, TLS < 1.3, no h2) are seen, logged and counted here: they never
reach `authorize`.

Several CONNECT streams on one connection are served concurrently, each through
authorize → handler, as a pooling client (real ztunnel) would send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import re
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from h2.errors import ErrorCodes

from trustusbank.mesh.hbone.h2 import HboneConnection, HboneError, HboneStream, describe_error, header_dict
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.identity.tls import ALPN_H2

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0

_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_PORT = re.compile(r"[0-9]{1,5}")


class Authority(NamedTuple):
    """The CONNECT target, parsed: unpacks as `host, port`; `str()` gives back `host:port`."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class HboneRequest:
    """One CONNECT request, as `authorize` and the handler see it.

    `peer_identity` comes from the verified client certificate, never from headers;
    `local_addr` is the HBONE listener address the client reached.
    """

    authority: Authority
    headers: dict[str, str]
    peer_identity: SpiffeId | None
    peer_addr: tuple[str, int] | None
    local_addr: tuple[str, int] | None = None
    method: str = "CONNECT"

    @property
    def host(self) -> str:
        return self.authority.host

    @property
    def port(self) -> int:
        return self.authority.port

    @property
    def local_port(self) -> int | None:
        return self.local_addr[1] if self.local_addr else None


@dataclass
class ServerStats:
    """Counters a caller may pass to `serve` and export as metrics."""

    connections: int = 0
    handshake_failures: int = 0
    streams_accepted: int = 0
    streams_refused: int = 0
    handshake_failure_reasons: dict[str, int] = field(default_factory=dict)


Authorize = Callable[[HboneRequest], Awaitable[int] | int]
Handler = Callable[[HboneRequest, HboneStream], Awaitable[None]]
HandshakeErrorHook = Callable[[tuple[str, int] | None, str], None]
ContextSource = Callable[[], ssl.SSLContext] | ssl.SSLContext


def parse_authority(authority: str) -> Authority:
    """Split `host:port` / `[v6]:port`; ValueError unless host and port are well-formed."""
    try:
        return Authority(*_split_authority(authority))
    except ValueError as exc:
        raise ValueError(f"malformed authority {authority!r}: {exc}") from None


def _split_authority(authority: str) -> tuple[str, int]:
    if authority.startswith("["):
        host, sep, port_text = authority[1:].partition("]:")
        if not sep:
            raise ValueError("expected [ipv6]:port")
        ipaddress.IPv6Address(host)
    else:
        host, sep, port_text = authority.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError("expected host:port")
        if re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)
        elif len(host) > 253 or not _HOSTNAME.fullmatch(host):
            raise ValueError("bad host name")
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError("bad port")
    return host, int(port_text)


class _HandshakeRefused(Exception):
    pass


class _TlsStreamProtocol(asyncio.StreamReaderProtocol):
    """asyncio.start_server's protocol, minus TCP half-open after EOF.

    The connection only carries TLS, where keeping a half-open transport is
    meaningless; the stock protocol only learns that after start_tls returns, so a
    peer closing right after the handshake made asyncio log a spurious warning.
    """

    def eof_received(self) -> bool:
        super().eof_received()
        return False


# Live connections per server, so that `shutdown` can end them (asyncio 3.11 cannot).
_live: weakref.WeakKeyDictionary[asyncio.Server, set[asyncio.Task[None]]] = weakref.WeakKeyDictionary()


async def serve(
    host: str,
    port: int,
    *,
    ssl_context_for: ContextSource,
    handler: Handler,
    authorize: Authorize,
    on_handshake_error: HandshakeErrorHook | None = None,
    stats: ServerStats | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> asyncio.Server:
    """Listen for HBONE on host:port (0 picks a free port; see `server.sockets`).

    `authorize(request)` returns the status to answer: 2xx accepts and then runs
    `handler(request, stream)`; anything else is sent as the refusal (401, 403,
    503...). If `authorize` raises, the answer is 500. Non-CONNECT → 405,
    malformed `:authority` → 400. When the handler returns the stream is closed
    (END_STREAM if still open); if it raises, the stream is reset.
    """
    counters = stats if stats is not None else ServerStats()
    tasks: set[asyncio.Task[None]] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await _serve_connection(reader, writer)
        except asyncio.CancelledError:
            # Cancelled by shutdown(): end quietly. (asyncio 3.11's done-callback for
            # connection tasks calls task.exception(), which raises on a cancelled task.)
            writer.transport.abort()
        finally:
            tasks.discard(task)

    async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = (peername[0], peername[1]) if peername else None
        try:
            context = ssl_context_for if isinstance(ssl_context_for, ssl.SSLContext) else ssl_context_for()
            await writer.start_tls(context, ssl_handshake_timeout=handshake_timeout)
            ssl_object = writer.get_extra_info("ssl_object")
            if ssl_object is None or ssl_object.selected_alpn_protocol() != ALPN_H2:
                raise _HandshakeRefused("client did not negotiate ALPN h2")
        except (OSError, TimeoutError, LookupError, ValueError, _HandshakeRefused) as exc:
            _handshake_failed(peer, describe_error(exc))
            writer.transport.abort()
            return
        counters.connections += 1
        streams: set[asyncio.Task[None]] = set()

        def on_request(stream: HboneStream, headers: list[tuple[str, str]]) -> None:
            task = asyncio.create_task(_serve_stream(stream, headers))
            streams.add(task)
            task.add_done_callback(streams.discard)

        connection = HboneConnection(reader, writer, client_side=False, on_request=on_request)
        try:
            await connection.start()
            await connection.wait_closed()
        except HboneError as exc:
            log.info("HBONE connection from %s failed: %s", peer, exc)
        finally:
            for task in list(streams):
                task.cancel()
            await asyncio.gather(*streams, return_exceptions=True)
            await connection.close()

    def _handshake_failed(peer: tuple[str, int] | None, reason: str) -> None:
        counters.handshake_failures += 1
        counters.handshake_failure_reasons[reason] = counters.handshake_failure_reasons.get(reason, 0) + 1
        log.info("HBONE handshake from %s refused: %s", peer, reason)
        if on_handshake_error is not None:
            try:
                on_handshake_error(peer, reason)
            except Exception:
                log.exception("on_handshake_error hook failed")

    async def _serve_stream(stream: HboneStream, headers: list[tuple[str, str]]) -> None:
        try:
            request_or_status = _parse_request(stream, headers)
            if isinstance(request_or_status, int):
                counters.streams_refused += 1
                await stream.respond(request_or_status, end_stream=True)
                return
            request = request_or_status
            status = await _authorize(request)
            if not 200 <= status < 300:
                counters.streams_refused += 1
                log.info("HBONE %s from %s refused: %d", request.authority, request.peer_identity, status)
                await stream.respond(status, end_stream=True)
                return
            await stream.respond(status)
            counters.streams_accepted += 1
            try:
                await handler(request, stream)
            except HboneError as exc:
                # Usually the client abandoning the stream (RST_STREAM CANCEL): routine.
                log.debug("HBONE stream %s from %s ended: %s", request.authority, request.peer_identity, exc)
            except Exception:
                log.exception("HBONE handler for %s failed", request.authority)
                await stream.reset(ErrorCodes.INTERNAL_ERROR)
        except HboneError as exc:
            log.debug("HBONE stream from %s ended: %s", stream.peer_addr, exc)
        finally:
            await stream.close()

    async def _authorize(request: HboneRequest) -> int:
        try:
            result = authorize(request)
            status = await result if inspect.isawaitable(result) else result
        except Exception:
            log.exception("HBONE authorize failed for %s; answering 500", request.authority)
            return 500
        if not isinstance(status, int) or not 200 <= status <= 599:
            log.error("HBONE authorize returned %r; answering 500", status)
            return 500
        return status

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _TlsStreamProtocol(asyncio.StreamReader(), on_connection), host, port
    )
    _live[server] = tasks
    return server


def _parse_request(stream: HboneStream, headers: list[tuple[str, str]]) -> HboneRequest | int:
    """The request, or the error status to answer instead of authorizing it."""
    pseudo = header_dict(headers, pseudo=True)
    method = pseudo.get(":method", "")
    if method != "CONNECT" or ":protocol" in pseudo:
        return 405
    try:
        authority = parse_authority(pseudo.get(":authority", ""))
    except ValueError:
        return 400
    return HboneRequest(
        authority=authority,
        headers=header_dict(headers, pseudo=False),
        peer_identity=stream.peer_identity,
        peer_addr=stream.peer_addr,
        local_addr=stream.local_addr,
        method=method,
    )


async def shutdown(server: asyncio.Server) -> None:
    """Stop listening and end every live connection (their streams are cancelled)."""
    server.close()
    tasks = list(_live.pop(server, set()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await server.wait_closed()
