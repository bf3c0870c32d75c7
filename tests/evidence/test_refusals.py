"""Refusals that never become a request still reach the evidence store, as denies.

A refused mTLS handshake (at the waypoint or at a node's ztunnel) and the
waypoint's 403 for a request that came through no tunnel are written by the real
components on real sockets, then ingested: each is one record an auditor finds
with the other denies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from opentelemetry.trace import NoOpTracer

from tests.mesh.secrets import secrets_for
from tests.mesh.waypoint.harness import ALICE, DEADLINE, GATEWAY, running
from tests.mesh.ztunnel.test_policy_update import Node
from tests.serving import serving
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Pod, PodPort
from trustusbank.evidence import EvidenceStore, ingest
from trustusbank.evidence.sources import MTLS_HANDSHAKE
from trustusbank.mesh.identity import CertificateAuthority, SpiffeId
from trustusbank.mesh.waypoint.proxy import NO_IDENTITY
from trustusbank.mesh.ztunnel.inbound import Inbound

SERVER = SpiffeId("cluster.local", "bank", "account-mcp")


async def speak_plain_http(port: int) -> None:
    """What a local process without an SVID does: plain HTTP at an mTLS port, until it is cut off."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    async with asyncio.timeout(DEADLINE):
        with contextlib.suppress(ConnectionError):
            await reader.read()
    writer.close()


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_the_waypoints_refusals_are_denies_in_the_evidence(
    tmp_path: Path, files: ClusterFiles, store: EvidenceStore
) -> None:
    log_path = files.waypoint_log(GATEWAY)
    async with running(tmp_path, log_path=log_path) as waypoint:
        await speak_plain_http(waypoint.hbone_port)
        async with serving(waypoint.app) as url:  # a request that came through no tunnel
            reader, writer = await asyncio.open_connection(*url.removeprefix("http://").split(":"))
            writer.write(b"GET /echo/x HTTP/1.1\r\nHost: wp\r\nConnection: close\r\n\r\n")
            async with asyncio.timeout(DEADLINE):
                assert (await reader.read()).startswith(b"HTTP/1.1 403")
            writer.close()
        pool, _ = waypoint.client(ALICE)
        async with asyncio.timeout(DEADLINE):
            assert (await pool.request("GET", "http://wp.shop:8080/echo/ok")).status == 200

    assert ingest(files, store) == 3
    [handshake] = store.select("kind = 'tls-deny'")
    assert (handshake.source, handshake.policy, handshake.src_identity) == ("waypoint", MTLS_HANDSHAKE, None)
    assert handshake.is_deny
    assert "tls handshake failed" in handshake.summary
    [unnamed] = store.select("source = 'waypoint' AND kind = 'http-deny'")
    assert (unnamed.policy, unnamed.src_identity) == (NO_IDENTITY, None)
    assert {r.kind for r in store.select("kind LIKE '%-deny'")} == {"tls-deny", "http-deny"}
    [allowed] = store.select("kind = 'http-allow'")
    assert allowed.src_identity == ALICE.uri
    assert store.verify().ok


async def test_a_handshake_ztunnel_refuses_is_a_deny_in_the_evidence(
    tmp_path: Path, files: ClusterFiles, store: EvidenceStore
) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    secrets = await secrets_for(ca, tmp_path / "certs", SERVER)
    node = Node(secrets, files.access_log("test-node"))
    pod = Pod("account-mcp-0", "bank", "account-mcp", "account-mcp", {}, "test-node", "127.0.0.1",
              "127.0.0.1", [PodPort("http", 8080)], "")  # fmt: skip
    inbound = Inbound(node, NoOpTracer())  # type: ignore[arg-type]  # Node stands in for NodeProxy
    hbone = await inbound.serve_hbone(pod, SERVER, 0)
    try:
        await speak_plain_http(hbone.sockets[0].getsockname()[1])
    finally:
        hbone.close()
    [line] = lines(files.access_log("test-node"))
    assert str(line["error"]).startswith("tls handshake failed")

    assert ingest(files, store) == 1
    [record] = store.select()
    assert (record.source, record.kind, record.policy) == ("ztunnel", "tls-deny", MTLS_HANDSHAKE)
    assert record.is_deny
    assert record.dst_identity == SERVER.uri
    assert "tls handshake failed" in record.summary
