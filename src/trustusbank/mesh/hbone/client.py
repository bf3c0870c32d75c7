"""HBONE client: a TCP byte stream tunnelled as one HTTP/2 CONNECT stream over mutual TLS 1.3."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping

from h2.errors import ErrorCodes

from trustusbank.mesh.hbone.h2 import HboneConnection, HboneError, HboneRefused, HboneStream, describe_error
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.identity.svid import peer_identity as _peer_identity
from trustusbank.mesh.identity.tls import ALPN_H2

log = logging.getLogger(__name__)


class Tunnel(HboneStream):
    """An open HBONE tunnel; closing it closes its connection (one connection per tunnel)."""

    @property
    def peer_identity(self) -> SpiffeId:
        identity = self._conn.peer_identity
        assert identity is not None, "open_tunnel only returns tunnels to identified servers"
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
            await self._conn.close()

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

    The server must negotiate h2 and present a certificate whose SPIFFE ID equals
    `expected_identity` (any SPIFFE ID if None). `local_addr` binds the source
    address (e.g. the pod's IP). Raises HboneRefused for a non-2xx answer and
    HboneError for every other failure (TLS, identity, timeout, reset).
    """
    extra = _request_headers(headers or {})
    connection: HboneConnection | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context, local_addr=local_addr)
            connection = HboneConnection(reader, writer, client_side=True)
            _check_server(writer, expected_identity)
            await connection.start()
            tunnel = Tunnel(connection, connection.next_stream_id())
            request = [(":method", "CONNECT"), (":authority", authority), *extra]
            await connection.send_request(tunnel, request)
            await tunnel.wait_headers()
    except TimeoutError as exc:
        await _abandon(connection)
        raise HboneError(f"HBONE to {host}:{port} timed out after {timeout}s") from exc
    except HboneError:
        await _abandon(connection)
        raise
    except OSError as exc:
        await _abandon(connection)
        raise HboneError(f"HBONE to {host}:{port} failed: {describe_error(exc)}") from exc
    except BaseException:
        await _abandon(connection)
        raise
    if not 200 <= tunnel.status < 300:
        await tunnel.close()
        raise HboneRefused(tunnel.status)
    return tunnel


def _request_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
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


async def _abandon(connection: HboneConnection | None) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            await connection.close(ErrorCodes.CANCEL)
