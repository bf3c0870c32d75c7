"""Network namespaces held by file descriptor, and sockets made inside them.

A socket belongs to the network namespace it was created in, for its whole life,
whichever thread later binds, connects or accepts on it. So a process outside a
pod's namespace (the node proxy, as ztunnel with the netns istio-cni hands it)
can listen and connect *inside* the pod by creating the socket there and using
it from anywhere.

Entering a namespace is per thread, and a process in an unprivileged user
namespace cannot enter the host's network namespace again once it has left it.
So every entry happens on a short-lived thread that dies afterwards: the
calling thread never changes namespace.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import TypeVar

from trustusbank.kernel.syscalls import CLONE_NEWNET, setns, unshare

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFF_RUNNING = 0x40

T = TypeVar("T")


def _on_thread(work: Callable[[], T]) -> T:
    """Run `work` on a fresh thread and return its result (or raise its error)."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the caller below
            error.append(exc)

    thread = threading.Thread(target=run, name="netns", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _loopback_up() -> None:
    """`ip link set lo up`, with the interface ioctls (no netlink library needed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP | IFF_RUNNING))


def socket_in(netns: int, family: int, kind: int) -> socket.socket:
    """A socket of the namespace behind descriptor `netns`.

    A stream socket is made with its protocol named (IPPROTO_TCP), as asyncio's own are:
    asyncio turns Nagle off only on sockets that say they are TCP, and with Nagle on every
    small request waits ~40 ms for the peer's delayed ACK.
    """
    protocol = socket.IPPROTO_TCP if kind == socket.SOCK_STREAM else 0

    def make() -> socket.socket:
        setns(netns, CLONE_NEWNET)
        return socket.socket(family, kind, protocol)

    return _on_thread(make)


class NetworkNamespace:
    """One network namespace, alive as long as this object holds its descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def create(cls) -> NetworkNamespace:
        """A new namespace with only its loopback interface, up (as a CNI leaves a fresh pod)."""

        def make() -> int:
            unshare(CLONE_NEWNET)
            _loopback_up()
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        return cls(_on_thread(make))

    def new_socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
        return socket_in(self.fd, family, kind)

    def listener(self, host: str, port: int, backlog: int = 128) -> socket.socket:
        sock = self.new_socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def open_connection(
        self, host: str, port: int, local_addr: tuple[str, int] | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect from inside the namespace (to the pod's own loopback, say)."""
        sock = self.new_socket()
        try:
            sock.setblocking(False)
            if local_addr is not None:
                sock.bind(local_addr)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
