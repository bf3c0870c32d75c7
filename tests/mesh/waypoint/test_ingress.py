"""The waypoint's way in, over real sockets: identity only from the tunnel, every refusal on record.

Each test runs the waypoint as its process wires it (`harness.running`) and talks to
it as callers do: HTTP/1.1 over HBONE tunnels with their own SVIDs, or plain TCP as a
hostile local process would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpcore
import pytest

from tests.mesh.waypoint.harness import (
    ALICE,
    BOB,
    DEADLINE,
    Waypoint,
    listening_sockets,
    running,
)


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
