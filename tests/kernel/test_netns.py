"""Network namespaces held by descriptor: sockets made inside belong inside, whoever uses them."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from trustusbank.kernel.netns import NetworkNamespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a network namespace needs root here")


async def _echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    writer.write(f"{peer[0]}".encode())
    await writer.drain()
    writer.close()


async def test_a_listener_made_inside_is_reachable_only_from_inside() -> None:
    netns = NetworkNamespace.create()
    try:
        server = await asyncio.start_server(_echo_once, sock=netns.listener("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        reader, _ = await netns.open_connection("127.0.0.1", port, local_addr=("127.9.8.7", 0))
        assert await reader.read() == b"127.9.8.7", "any 127/8 source is the namespace's own"
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)  # the host's loopback is another one
        server.close()
    finally:
        netns.close()


async def test_two_namespaces_do_not_share_a_loopback() -> None:
    first, second = NetworkNamespace.create(), NetworkNamespace.create()
    try:
        server = await asyncio.start_server(_echo_once, sock=first.listener("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            await second.open_connection("127.0.0.1", port)
        server.close()
    finally:
        first.close()
        second.close()


def test_a_fresh_namespace_has_only_loopback_and_no_route_out() -> None:
    netns = NetworkNamespace.create()
    try:
        sock = netns.new_socket()
        with pytest.raises(OSError, match="unreachable"):
            sock.connect(("192.0.2.1", 80))
        sock.close()
        assert socket.if_nameindex()  # the host's own interfaces are untouched
    finally:
        netns.close()


def test_the_calling_thread_never_changes_namespace() -> None:
    before = os.readlink("/proc/thread-self/ns/net")
    netns = NetworkNamespace.create()
    netns.new_socket().close()
    netns.close()
    assert os.readlink("/proc/thread-self/ns/net") == before


async def test_connections_made_inside_have_nagle_off() -> None:
    """Else each small request stalls ~40 ms on a delayed ACK (asyncio sets NODELAY only for TCP)."""
    netns = NetworkNamespace.create()
    try:
        listener = netns.listener("127.0.0.1", 0)
        accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        server = await asyncio.start_server(lambda r, w: accepted.put_nowait(w), sock=listener)
        port = server.sockets[0].getsockname()[1]
        _, writer = await netns.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        inside = (await accepted.get()).get_extra_info("socket")
        assert inside.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
        server.close()
    finally:
        netns.close()
