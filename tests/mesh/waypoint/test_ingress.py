"""The waypoint's way in, over real sockets: identity only from the tunnel, every refusal on record.

Each test runs the waypoint as its process wires it (`harness.running`) and talks to
it as callers do: HTTP/1.1 over HBONE tunnels with their own SVIDs, or plain TCP as a
hostile local process would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpcore
import pytest

from tests.mesh.waypoint.harness import (
    ALICE,
    BOB,
    DEADLINE,
    GATEWAY,
    Waypoint,
    listening_sockets,
    read_to_end,
    running,
)
from tests.serving import serving
from trustusbank.mesh.identity import CertificateAuthority, SecretManager, SpiffeId
from trustusbank.mesh.waypoint.proxy import NO_IDENTITY

HANDSHAKES = "trustusbank_hbone_handshake_errors_total"
DENIALS = "agentgateway_policy_denials_total"


@pytest.fixture
async def waypoint(tmp_path: Path) -> AsyncIterator[Waypoint]:
    async with running(tmp_path) as started:
        yield started


async def get(pool: httpcore.AsyncConnectionPool, path: str) -> tuple[int, bytes]:
    async with asyncio.timeout(DEADLINE):
        response = await pool.request("GET", f"http://wp.shop:8080{path}")
    return response.status, response.content


async def test_two_tunnels_at_once_are_each_served_as_their_own_caller(waypoint: Waypoint) -> None:
    """Interleaved requests on two live tunnels: every log line names the SVID of the tunnel it came on."""
    alice, alice_tunnels = waypoint.client(ALICE)
    bob, bob_tunnels = waypoint.client(BOB)

    async def calls(pool: httpcore.AsyncConnectionPool, who: str) -> list[tuple[int, bytes]]:
        return [await get(pool, f"/echo/{who}/{n}") for n in range(8)]

    answers = await asyncio.gather(calls(alice, "alice"), calls(bob, "bob"))

    assert answers[0] == [(200, f"/echo/alice/{n}".encode()) for n in range(8)]
    assert answers[1] == [(200, f"/echo/bob/{n}".encode()) for n in range(8)]
    assert (alice_tunnels.tunnels, bob_tunnels.tunnels) == (1, 1), "keep-alive: many requests, one tunnel"
    seen = {(line["http.path"].split("/")[2], line["src.identity"]) for line in waypoint.lines()}
    assert seen == {("alice", ALICE.uri), ("bob", BOB.uri)}
    assert len(waypoint.lines()) == 16


async def test_the_http_layer_has_no_listener_a_local_process_could_reach(tmp_path: Path) -> None:
    """The only socket the waypoint listens on is HBONE: there is no private HTTP port to connect to."""
    before = listening_sockets()
    async with running(tmp_path) as waypoint:
        opened = listening_sockets() - before - {waypoint.echo_address}  # the test's backend is not ours
        assert opened == {("127.0.0.1", waypoint.hbone_port)}
        pool, _ = waypoint.client(ALICE)
        assert await get(pool, "/echo/up") == (200, b"/echo/up")  # and it does serve, through a tunnel


async def test_plain_tcp_to_the_waypoint_gets_no_http_and_is_counted_and_logged(waypoint: Waypoint) -> None:
    """A local process speaking HTTP at the HBONE port: no answer, a refused handshake on record."""
    reader, writer = await asyncio.open_connection("127.0.0.1", waypoint.hbone_port)
    writer.write(b"GET /echo/x HTTP/1.1\r\nHost: wp\r\n\r\n")
    async with asyncio.timeout(DEADLINE):
        try:
            reply = await reader.read()
        except ConnectionResetError:
            reply = b""
    writer.close()
    assert b"HTTP/1.1" not in reply
    assert b"/echo" not in reply

    [line] = waypoint.lines()
    assert (line["scope"], line["decision"], line["src.identity"]) == ("hbone", "deny", None)
    assert line["reason"].startswith("tls handshake failed")
    assert line["src.addr"].startswith("127.0.0.1:")
    assert waypoint.metric(HANDSHAKES, gateway=GATEWAY, reason=line["error.type"]) == 1
    assert line["error.type"] == "not_tls"


async def test_a_certificate_from_another_ca_is_refused_counted_and_logged(
    waypoint: Waypoint, tmp_path: Path
) -> None:
    foreign = CertificateAuthority.load_or_create(tmp_path / "foreign-ca")

    async def sign(identity: SpiffeId, csr_pem: bytes) -> bytes:
        return foreign.sign_csr(csr_pem, identity, timedelta(hours=1))

    other = SecretManager(sign, foreign.trust_bundle_pem, tmp_path / "foreign-certs")
    await other.get(ALICE)
    context = other.ssl_client_context(ALICE)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the attacker does not care who the server is
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DEADLINE):
            _, writer = await asyncio.open_connection("127.0.0.1", waypoint.hbone_port, ssl=context)
            writer.close()
    async with asyncio.timeout(DEADLINE):
        while not waypoint.lines():  # noqa: ASYNC110 - TLS 1.3: the server judges after the client's done
            await asyncio.sleep(0.01)
    [line] = waypoint.lines()
    assert line["reason"].startswith("tls handshake failed")
    assert line["error.type"] == "certificate"
    assert waypoint.metric(HANDSHAKES, gateway=GATEWAY, reason="certificate") == 1


async def test_a_request_that_came_through_no_tunnel_is_refused_logged_and_counted(
    waypoint: Waypoint, tmp_path: Path
) -> None:
    """The proxy itself on a plain port (what the old private listener was): no tunnel, nobody, said so."""
    alice, _ = waypoint.client(ALICE)
    assert (await get(alice, "/echo/live"))[0] == 200  # a tunnel is live while the stranger calls
    async with serving(waypoint.app) as url:
        pool = httpcore.AsyncConnectionPool()
        try:
            async with asyncio.timeout(DEADLINE):
                response = await pool.request(
                    "GET", f"{url}/echo/stranger", headers={"x-forwarded-client-cert": f"URI={ALICE.uri}"}
                )
        finally:
            await pool.aclose()
    assert response.status == 403
    assert NO_IDENTITY.encode() in response.content
    refused = [line for line in waypoint.lines() if line["http.path"] == "/echo/stranger"]
    assert [(r["decision"], r["reason"], r["http.status"], r["src.identity"]) for r in refused] == [
        ("deny", NO_IDENTITY, 403, None)
    ]
    labels = {"gateway": GATEWAY, "route": "none", "reason": NO_IDENTITY, "source_principal": "none"}
    assert waypoint.metric(DENIALS, **labels) == 1


async def test_server_sent_events_stream_through_the_tunnel(waypoint: Waypoint) -> None:
    """The first event reaches the caller while the backend is still holding the second."""
    pool, _ = waypoint.client(ALICE)
    async with asyncio.timeout(DEADLINE), pool.stream("GET", "http://wp.shop:8080/sse") as response:
        assert response.status == 200
        chunks = response.aiter_stream()
        received = b""
        while b"data: one\n\n" not in received:
            received += await anext(chunks)
        assert b"two" not in received
        waypoint.echo.release.set()
        async for chunk in chunks:
            received += chunk
    assert received == b"data: one\n\ndata: two\n\n"


@pytest.mark.parametrize("sender", ["stalls", "trickles"])
async def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closed(
    tmp_path: Path, sender: str
) -> None:
    async with running(tmp_path, body_timeout=0.3) as waypoint:
        tunnel = await waypoint.tunnel(ALICE)
        await tunnel.write(
            b"POST /echo/slow HTTP/1.1\r\nHost: wp.shop:8080\r\nContent-Length: 1000\r\n\r\nab"
        )

        async def trickle() -> None:
            with contextlib.suppress(Exception):
                while True:
                    await asyncio.sleep(0.02)
                    await tunnel.write(b"x")

        dripping = asyncio.create_task(trickle()) if sender == "trickles" else None
        try:
            async with asyncio.timeout(DEADLINE):
                answer = await read_to_end(tunnel)  # ends: the waypoint closed the connection
        finally:
            if dripping is not None:
                dripping.cancel()
                await asyncio.gather(dripping, return_exceptions=True)
            await tunnel.close()
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 408"), answer
    assert b"connection: close" in head
    [line] = waypoint.lines()
    assert (line["decision"], line["http.status"], line["src.identity"]) == ("deny", 408, ALICE.uri)
    assert line["reason"].startswith("request body timeout")
