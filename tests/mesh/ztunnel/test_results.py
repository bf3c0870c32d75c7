"""Which `response_flags` a failed connection closes with, from the errors a real HBONE client raises,
and that a connection is closed once.

The flags are ztunnel's (src/proxy/metrics.rs `extract_failure_reason`): a TLS error is
TLS_FAILURE, anything else that kept the connection from being made is CONNECT (a CONNECT
answered 401 included: only the destination knows it was policy), and a reset while copying is
an ordinary end ("-").
"""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from tests.mesh.identities import CONVERTER, FX_API
from trustusbank.mesh.hbone import HboneError, open_tunnel
from trustusbank.mesh.identity import CertificateAuthority, SecretManager, SpiffeId
from trustusbank.mesh.ztunnel.labels import peer_labels
from trustusbank.mesh.ztunnel.metrics import ZtunnelMetrics
from trustusbank.mesh.ztunnel.results import ConnectionResult, ResponseFlag, copy_flag, flag_for


async def secrets_of(directory: Path, identity: SpiffeId) -> SecretManager:
    ca = CertificateAuthority.load_or_create(directory / "ca")

    async def sign(who: SpiffeId, csr_pem: bytes) -> bytes:
        return ca.sign_csr(csr_pem, who, timedelta(hours=1))

    secrets = SecretManager(sign, ca.trust_bundle_pem, directory / "certs")
    await secrets.get(identity)
    return secrets


async def failed_tunnel(port: int, secrets: SecretManager) -> HboneError:
    with pytest.raises(HboneError) as caught:
        await open_tunnel(
            "127.0.0.1",
            port,
            authority="127.0.0.1:8080",
            ssl_context=secrets.ssl_client_context(CONVERTER),
            expected_identity=FX_API,
            timeout=20,
        )
    return caught.value


async def test_a_peer_from_another_trust_domain_is_a_tls_failure(tmp_path: Path) -> None:
    ours = await secrets_of(tmp_path / "ours", CONVERTER)
    theirs = await secrets_of(tmp_path / "theirs", FX_API)  # a certificate our bundle does not trust

    async def handshake_only(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handshake_only, "127.0.0.1", 0, ssl=theirs.ssl_server_context(FX_API))
    try:
        error = await failed_tunnel(server.sockets[0].getsockname()[1], ours)
    finally:
        server.close()
    assert flag_for(error) is ResponseFlag.TLS_FAILURE


async def test_nobody_listening_is_a_connect_failure(tmp_path: Path) -> None:
    ours = await secrets_of(tmp_path, CONVERTER)
    with socket.socket() as taken:  # bound, never listening: the connect is refused
        taken.bind(("127.0.0.1", 0))
        error = await failed_tunnel(taken.getsockname()[1], ours)
    assert flag_for(error) is ResponseFlag.CONNECT


def test_a_reset_while_copying_is_an_ordinary_end_and_other_errors_are_not() -> None:
    assert copy_flag(ConnectionResetError()) is ResponseFlag.NONE
    assert copy_flag(BrokenPipeError()) is ResponseFlag.NONE
    assert copy_flag(HboneError("stream reset by peer")) is ResponseFlag.CONNECT


def test_a_connection_opens_once_and_closes_once_with_its_first_flag() -> None:
    metrics = ZtunnelMetrics()
    labels = peer_labels("source", None, CONVERTER.uri, None, None, None, True)
    with ConnectionResult(metrics, labels) as result:
        result.record(ResponseFlag.CONNECT)
        result.record(ResponseFlag.NONE, received=5)  # ignored: already closed
    sample = metrics.registry.get_sample_value
    assert sample("istio_tcp_connections_opened_total", labels) == 1
    assert sample("istio_tcp_connections_closed_total", labels | {"response_flags": "CONNECT"}) == 1
    assert sample("istio_tcp_connections_failed_total", labels | {"response_flags": "CONNECT"}) == 1
    assert sample("istio_tcp_connections_closed_total", labels) is None
    assert sample("istio_tcp_received_bytes_total", labels) == 0  # exists from the open, at zero


def test_a_connection_left_unrecorded_closes_as_it_stands() -> None:
    """ztunnel's Drop: cancelled on the way, the close is still counted, with no failure flag."""
    metrics = ZtunnelMetrics()
    labels = peer_labels("destination", None, CONVERTER.uri, None, None, None, True)
    with pytest.raises(asyncio.CancelledError), ConnectionResult(metrics, labels):
        raise asyncio.CancelledError
    assert metrics.registry.get_sample_value("istio_tcp_connections_closed_total", labels) == 1
    assert metrics.registry.get_sample_value("istio_tcp_connections_failed_total", labels) is None
