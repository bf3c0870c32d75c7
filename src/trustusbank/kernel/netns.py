"""Network namespaces held by file descriptor, and sockets made inside them.

A socket belongs to the network namespace it was created in, for its whole life,
whichever thread later binds, connects or accepts on it. So a process outside a
pod's namespace (the node proxy, as ztunnel with the netns istio-cni hands it)
can listen and connect *inside* the pod by creating the socket there and using
it from anywhere.

Entering a namespace is per thread, and a process in an unprivileged user
namespace cannot enter the host's network namespace again once it has left it.
So the calling thread never changes namespace: each namespace object keeps one
worker thread that entered it once and makes its sockets on request (a fresh
thread per socket cost ~190 us, on every connection into or out of a pod).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future
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


class _Maker:
    """A thread that lives inside one namespace and makes sockets there on request."""

    def __init__(self, netns: int) -> None:
        self.requests: queue.SimpleQueue[tuple[int, int, Future[socket.socket]] | None] = queue.SimpleQueue()
        entered: Future[None] = Future()
        self.thread = threading.Thread(target=self._run, args=(netns, entered), name="netns", daemon=True)
        self.thread.start()
        entered.result()

    def _run(self, netns: int, entered: Future[None]) -> None:
        try:
            setns(netns, CLONE_NEWNET)
        except BaseException as exc:  # handed to the creator
            entered.set_exception(exc)
            return
        entered.set_result(None)
        while (request := self.requests.get()) is not None:
            family, kind, answer = request
            try:
                # Named TCP, as asyncio's own sockets are: asyncio turns Nagle off only on sockets that
                # say so, and with Nagle on each small request waits ~40 ms for the peer's delayed ACK.
                protocol = socket.IPPROTO_TCP if kind == socket.SOCK_STREAM else 0
                answer.set_result(socket.socket(family, kind, protocol))
            except BaseException as exc:
                answer.set_exception(exc)

    def make(self, family: int, kind: int) -> socket.socket:
        answer: Future[socket.socket] = Future()
        self.requests.put((family, kind, answer))
        return answer.result()

    def stop(self) -> None:
        self.requests.put(None)


class NetworkNamespace:
    """One network namespace, alive as long as this object holds its descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._maker: _Maker | None = None
        self._lock = threading.Lock()

    @classmethod
    def create(cls) -> NetworkNamespace:
        """A new namespace with only its loopback interface, up (as a CNI leaves a fresh pod)."""

        def make() -> int:
            unshare(CLONE_NEWNET)
            _loopback_up()
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        return cls(_on_thread(make))

    def new_socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
        with self._lock:
            if self._maker is None:
                self._maker = _Maker(self.fd)
        return self._maker.make(family, kind)

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
        if self._maker is not None:
            self._maker.stop()
            self._maker = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
