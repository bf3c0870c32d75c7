"""HBONE client: a TCP byte stream tunnelled as one HTTP/2 CONNECT stream over mutual TLS 1.3.

`connect` makes and checks a connection, `request` opens one tunnel on it; `open_tunnel`
does both for a connection of the tunnel's own, and `pool.HbonePool` reuses connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping

from h2.errors import ErrorCodes

from trustusbank.mesh.hbone.h2 import (
    HboneConnection,
    HboneError,
    HboneRefused,
    HboneStream,
    HboneUnsent,
    describe_error,
)
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.identity.svid import peer_identity as _peer_identity
from trustusbank.mesh.identity.tls import ALPN_H2

log = logging.getLogger(__name__)


class Tunnel(HboneStream):
    """An open HBONE tunnel: one CONNECT stream. Closing it ends the stream, then runs its release.

    `open_tunnel` gives each tunnel its own connection and closes it with the tunnel; a
    pool (`HbonePool`) shares the connection and only takes the stream back.
    """

    def __init__(
        self,
        connection: HboneConnection,
        stream_id: int,
        release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(connection, stream_id)
        self._release = release

    @property
    def peer_identity(self) -> SpiffeId:
        identity = self._conn.peer_identity
        assert identity is not None, "tunnels are only opened to identified servers"
        return identity

    @property
    def response_headers(self) -> dict[str, str]:
        """All response headers, lower-case, including `:status`."""
        return self.headers

    @property
    def status(self) -> int:
        return int(self.response_headers.get(":status", "0"))

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                await release()

    async def __aenter__(self) -> Tunnel:
        return self


async def open_tunnel(
    host: str,
    port: int,
    *,
    authority: str,
    ssl_context: ssl.SSLContext,
    expected_identity: SpiffeId | None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10,  # noqa: ASYNC109 - one deadline for TCP, TLS and the CONNECT answer
    local_addr: tuple[str, int] | None = None,
) -> Tunnel:
    """Connect to an HBONE server (port 15008) and CONNECT to `authority` (the original `ip:port`).

    One connection for this tunnel alone, closed with it (`HbonePool` shares them).
    The server must negotiate h2 and present a certificate whose SPIFFE ID equals
    `expected_identity` (any SPIFFE ID if None). `local_addr` binds the source
    address (e.g. the pod's IP). Raises HboneRefused for a non-2xx answer and
    HboneError for every other failure (TLS, identity, timeout, reset).
    """
    extra = request_headers(headers or {})
    connection: HboneConnection | None = None
    try:
        async with asyncio.timeout(timeout):
            connection = await connect(host, port, ssl_context, expected_identity, local_addr)
            return await request(connection, authority, extra, release=connection.close)
    except TimeoutError as exc:
        await abandon(connection)
        raise HboneError(f"HBONE to {host}:{port} timed out after {timeout}s") from exc
    except HboneRefused:
        raise  # the tunnel's release closed the connection
    except BaseException:
        await abandon(connection)
        raise


async def connect(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    expected_identity: SpiffeId | None,
    local_addr: tuple[str, int] | None,
) -> HboneConnection:
    """A started HTTP/2 connection to a server whose certificate proved `expected_identity`."""
    connection: HboneConnection | None = None
    try:
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context, local_addr=local_addr)
        connection = HboneConnection(reader, writer, client_side=True)
        _check_server(writer, expected_identity)
        await connection.start()
        return connection
    except OSError as exc:
        await abandon(connection)
        raise HboneError(f"HBONE to {host}:{port} failed: {describe_error(exc)}") from exc
    except BaseException:
        await abandon(connection)
        raise


async def request(
    connection: HboneConnection,
    authority: str,
    headers: list[tuple[str, str]],
    *,
    release: Callable[[], Awaitable[None]] | None = None,
) -> Tunnel:
    """CONNECT to `authority` on a new stream of `connection`; the answered tunnel, or an error.

    HboneUnsent if the server provably never processed it (not sent, REFUSED_STREAM, above
    its GOAWAY): safe to try elsewhere. HboneRefused (the stream closed)
    for a non-2xx answer. On any failure the tunnel is closed, so `release` has run.
    """
    tunnel = Tunnel(connection, connection.next_stream_id(), release)
    try:
        await connection.send_request(tunnel, [(":method", "CONNECT"), (":authority", authority), *headers])
        await tunnel.wait_headers()
    except HboneError as exc:
        await tunnel.close()
        if not isinstance(exc, HboneUnsent) and connection.unprocessed(tunnel):
            raise HboneUnsent(f"{exc}; the server did not process the CONNECT") from exc
        raise
    except BaseException:
        await tunnel.close()
        raise
    if not 200 <= tunnel.status < 300:
        await tunnel.close()
        raise HboneRefused(tunnel.status)
    return tunnel


def request_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    result = []
    for name, value in headers.items():
        lowered = name.lower()
        if not lowered or lowered.startswith(":"):
            raise ValueError(f"extra header {name!r} is not a regular header field")
        result.append((lowered, value))
    return result


def _check_server(writer: asyncio.StreamWriter, expected: SpiffeId | None) -> None:
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None or ssl_object.selected_alpn_protocol() != ALPN_H2:
        raise HboneError("server did not negotiate ALPN h2")
    identity = _peer_identity(ssl_object)
    if identity is None:
        raise HboneError("server certificate carries no SPIFFE ID")
    if expected is not None and identity != expected:
        raise HboneError(f"server identity {identity} is not the expected {expected}")


async def abandon(connection: HboneConnection | None) -> None:
    """Close a connection that is being given up on (CANCEL), ignoring how it fails."""
    if connection is not None:
        with contextlib.suppress(Exception):
            await connection.close(ErrorCodes.CANCEL)
