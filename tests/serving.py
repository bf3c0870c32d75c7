"""Serving an ASGI app on 127.0.0.1 for a test: in the test's event loop, or in a thread.

Both bind a port-0 socket first (`trustusbank.workloads.serving.bind`), so a test never
races another for a port and always learns the real address before a client connects, and
both run the production uvicorn config (`trustusbank.http_server`), headers trusted as little.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive

from trustusbank.http_server import uvicorn_config
from trustusbank.workloads.serving import bind


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """The base URL (`http://127.0.0.1:<port>`) while `app` is being served."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # uvicorn gave up: raise its error
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def refused_url() -> tuple[socket.socket, str]:
    """A URL on 127.0.0.1 where nothing listens; keep the socket open so no one else takes the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


class Served:
    """An ASGI app under uvicorn on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, build: Callable[[str], ASGIApp]) -> None:
        self._sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.app = build(self.url)
        self._server = uvicorn.Server(uvicorn_config(self.app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> Served:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive(), "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@contextmanager
def served(build: Callable[[str], ASGIApp]) -> Iterator[Served]:
    server = Served(build).start()
    try:
        yield server
    finally:
        server.stop()


async def read_body(receive: Receive) -> bytes:
    """The whole request body an ASGI app is sent."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def read_json_body(receive: Receive) -> tuple[bytes, Any]:
    """The whole request body a test middleware is sent, and it parsed as JSON ({} if empty or not JSON)."""
    body = await read_body(receive)
    try:
        return body, json.loads(body) if body else {}
    except ValueError:
        return body, {}
