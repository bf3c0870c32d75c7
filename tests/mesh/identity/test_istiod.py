"""istiod's CSR service over its real Unix socket: it signs, refuses, and never leaves a node waiting.

A node proxy rotates certificates on the same schedule as it reloads policy; a CSR that
hangs must end in an error the rotation logs, and an unexpected failure inside istiod must
still answer (a refusal), so the node keeps its current SVID and carries on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

import trustusbank.mesh.identity.istiod as istiod_module
from trustusbank.cluster.topology import Pod, Topology
from trustusbank.mesh.identity import CertificateAuthority, SpiffeId
from trustusbank.mesh.identity.istiod import CsrClient, Istiod
from trustusbank.mesh.identity.svid import new_key_and_csr

NODE = "trustusbank-worker"
CONVERTER = SpiffeId("cluster.local", "trustusbank-bank-vendors", "currency-converter")
ACCOUNT = SpiffeId("cluster.local", "trustusbank-bank-mcp", "account-mcp")


def topology() -> Topology:
    converter = Pod(
        name="currency-converter-0",
        namespace=CONVERTER.namespace,
        deployment="currency-converter",
        service_account=CONVERTER.service_account,
        labels={"app": "currency-converter"},
        node=NODE,
        ip="127.91.1.10",
        app_ip="127.91.1.138",
        ports=[],
        image="trustusbank/currency-converter",
    )
    return Topology(subnet=91, pods=[converter])


async def serve(tmp_path: Path, view: Callable[[], Topology] = topology) -> tuple[asyncio.Server, Path]:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    socket_path = tmp_path / "istiod.sock"
    server = await Istiod(ca, view, {NODE: "node-token"}, timedelta(minutes=5)).serve(socket_path)
    return server, socket_path


async def test_a_node_gets_a_certificate_for_a_pod_it_runs(tmp_path: Path) -> None:
    server, socket_path = await serve(tmp_path)
    async with server:
        _, csr = new_key_and_csr(CONVERTER)
        pem = await CsrClient(socket_path, NODE, "node-token")(CONVERTER, csr)
    cert = x509.load_pem_x509_certificate(pem)
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [u.value for u in uris] == [CONVERTER.uri]


@pytest.mark.parametrize(
    ("token", "identity", "reason"),
    [
        ("wrong", CONVERTER, "is not authenticated"),
        ("node-token", ACCOUNT, "may not hold identity"),  # a pod this node does not run
    ],
)
async def test_a_csr_a_node_may_not_make_is_refused(
    tmp_path: Path, token: str, identity: SpiffeId, reason: str
) -> None:
    server, socket_path = await serve(tmp_path)
    async with server:
        _, csr = new_key_and_csr(identity)
        with pytest.raises(PermissionError, match=reason):
            await CsrClient(socket_path, NODE, token)(identity, csr)


async def test_an_unexpected_failure_in_istiod_is_answered_as_a_refusal(tmp_path: Path) -> None:
    def broken() -> Topology:
        raise RuntimeError("topology file half-written")

    server, socket_path = await serve(tmp_path, broken)
    async with server:
        _, csr = new_key_and_csr(CONVERTER)
        with pytest.raises(PermissionError, match="signing failed: RuntimeError"):
            await CsrClient(socket_path, NODE, "node-token")(CONVERTER, csr)


async def test_an_istiod_that_never_answers_is_an_error_not_a_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # reads the request, answers nothing, until the client goes

    socket_path = tmp_path / "istiod.sock"
    monkeypatch.setattr(istiod_module, "CSR_TIMEOUT", 0.2)
    server = await asyncio.start_unix_server(silent, path=str(socket_path))
    async with server:
        _, csr = new_key_and_csr(CONVERTER)
        with pytest.raises(TimeoutError):
            await CsrClient(socket_path, NODE, "node-token")(CONVERTER, csr)
    assert accepted.is_set()


async def test_a_csr_made_while_istiod_restarts_waits_for_it(tmp_path: Path) -> None:
    """No socket yet (istiod between a crash and its restart): the request waits, then is signed."""
    _, csr = new_key_and_csr(CONVERTER)
    asked = asyncio.create_task(CsrClient(tmp_path / "istiod.sock", NODE, "node-token")(CONVERTER, csr))
    await asyncio.sleep(3 * istiod_module.RECONNECT_PAUSE)  # it has found nobody at least once
    assert not asked.done()
    server, _ = await serve(tmp_path)
    async with server:
        pem = await asked
    assert x509.load_pem_x509_certificate(pem).not_valid_after_utc


async def test_an_istiod_that_stays_away_is_an_error_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(istiod_module, "CSR_TIMEOUT", 0.3)
    _, csr = new_key_and_csr(CONVERTER)
    with pytest.raises(TimeoutError):
        await CsrClient(tmp_path / "istiod.sock", NODE, "node-token")(CONVERTER, csr)


async def test_readiness_is_an_answer_on_the_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "istiod.sock"
    assert not await istiod_module.answers(socket_path)
    server, _ = await serve(tmp_path)
    async with server:
        assert await istiod_module.answers(socket_path)
    assert not await istiod_module.answers(socket_path)


async def test_a_csr_istiod_died_holding_is_asked_again(tmp_path: Path) -> None:
    """istiod killed between reading a request and answering it: the node proxy asks again."""
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    istiod = Istiod(ca, topology, {NODE: "node-token"}, timedelta(minutes=5))
    connections = 0

    async def dies_with_the_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await reader.readline()
            writer.close()  # no answer: what a kill -9 leaves the client with
            return
        await istiod._handle(reader, writer)

    socket_path = tmp_path / "istiod.sock"
    server = await asyncio.start_unix_server(dies_with_the_first, path=str(socket_path))
    async with server:
        _, csr = new_key_and_csr(CONVERTER)
        pem = await CsrClient(socket_path, NODE, "node-token")(CONVERTER, csr)
    assert connections == 2
    assert x509.load_pem_x509_certificate(pem).not_valid_after_utc
