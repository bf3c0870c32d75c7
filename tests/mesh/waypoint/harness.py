"""A waypoint as the process assembles it (Ingress + TunnelHttp + WaypointApp), on 127.0.0.1.

Real mTLS certificates from a test CA, a real HBONE listener on a port-0 socket,
and an echo backend under uvicorn. Clients are real: httpcore over HBONE tunnels
opened with a chosen SVID, or raw bytes on one tunnel. Only the waypoint's egress
is simplified: every backend connection goes to the echo server over plain TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
from opentelemetry.sdk.trace import TracerProvider

from tests.mesh.secrets import secrets_for
from tests.serving import read_body, serving
from trustusbank.cluster.topology import Pod, PodPort, Topology
from trustusbank.manifests.bundle import load_bundle
from trustusbank.mesh.hbone import Tunnel, open_tunnel, shutdown
from trustusbank.mesh.identity import CertificateAuthority, SecretManager, SpiffeId
from trustusbank.mesh.waypoint.egress import TunnelStream
from trustusbank.mesh.waypoint.guard_call import GUARD_TIMEOUT
from trustusbank.mesh.waypoint.ingress import Ingress
from trustusbank.mesh.waypoint.proxy import BODY_TIMEOUT, WaypointApp
from trustusbank.mesh.waypoint.routes import WaypointConfig
from trustusbank.mesh.waypoint.telemetry import WaypointLog, WaypointMetrics
from trustusbank.mesh.waypoint.tunnelhttp import TunnelHttp

GATEWAY = "shop/wp"
WAYPOINT_ID = SpiffeId("cluster.local", "shop", "wp")
ALICE = SpiffeId("cluster.local", "agents", "alice")
BOB = SpiffeId("cluster.local", "agents", "bob")
AUTHORITY = "127.0.0.1:8080"  # the waypoint pod's own listener, as a caller's ztunnel addresses it
DEADLINE = 20  # a guard against hanging, never an assertion about speed

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec:
  gatewayClassName: agentgateway-waypoint
  listeners:
    - {name: http, port: 8080, protocol: HTTP}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: shop}
spec:
  ports: [{port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: shop}
spec:
  parentRefs: [{name: wp}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs: [{name: echo, port: 80}]
"""

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


CHUNK = 64 * 1024


def big_chunk(n: int) -> bytes:
    """The `n`th chunk of a `/big/...` answer: its bytes say where they belong."""
    return bytes([n % 256]) * CHUNK


class Echo:
    """The backend: answers with the path.

    `/sse` sends one event, then waits for `release` (and sends another) or for the waypoint to
    end the request (`disconnected`); `/big/<n>` streams n MiB of `big_chunk`s, counting `sent`.
    Every request that reaches it is in `requests` (path, body).
    """

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.sent = 0
        self.requests: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.requests.append((scope["path"], body))
        if scope["path"] == "/sse":
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
            released = asyncio.create_task(self.release.wait())
            gone = asyncio.create_task(receive())  # after the body: returns only on a disconnect
            done, _ = await asyncio.wait((released, gone), return_when=asyncio.FIRST_COMPLETED)
            released.cancel()
            gone.cancel()
            if gone in done:
                self.disconnected.set()
                return
            await send({"type": "http.response.body", "body": b"data: two\n\n"})
            return
        if scope["path"].startswith("/big/"):
            chunks = int(scope["path"].removeprefix("/big/")) * 1024 * 1024 // CHUNK
            headers = [(b"content-length", str(chunks * CHUNK).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for n in range(chunks):
                await send({"type": "http.response.body", "body": big_chunk(n), "more_body": True})
                self.sent += CHUNK
            await send({"type": "http.response.body", "body": b""})
            return
        body = scope["path"].encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class ToBackend(httpcore.AsyncNetworkBackend):
    """The waypoint's egress in this harness: every backend host is the echo server, but for the
    hosts in `others` (host -> port). Every connection's host is noted in `connected`."""

    def __init__(self, port: int, others: dict[str, int] | None = None) -> None:
        self.port = port
        self.others = others or {}
        self.connected: list[str] = []
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        return await self.inner.connect_tcp("127.0.0.1", self.others.get(host, self.port), timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Hbone(httpcore.AsyncNetworkBackend):
    """A client's transport: each HTTP connection is one HBONE tunnel opened with `identity`'s SVID."""

    def __init__(self, waypoint: Waypoint, identity: SpiffeId) -> None:
        self.waypoint = waypoint
        self.identity = identity
        self.tunnels = 0

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.tunnels += 1
        return TunnelStream(await self.waypoint.tunnel(self.identity))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class Waypoint:
    secrets: SecretManager
    hbone_port: int
    log_path: Path
    metrics: WaypointMetrics
    ingress: Ingress
    echo: Echo
    app: WaypointApp
    echo_address: tuple[str, int]
    http: TunnelHttp
    egress: ToBackend
    clients: list[httpcore.AsyncConnectionPool] = field(default_factory=list)

    async def tunnel(self, identity: SpiffeId) -> Tunnel:
        await self.secrets.get(identity)
        return await open_tunnel(
            "127.0.0.1",
            self.hbone_port,
            authority=AUTHORITY,
            ssl_context=self.secrets.ssl_client_context(identity),
            expected_identity=WAYPOINT_ID,
            timeout=DEADLINE,
        )

    def client(self, identity: SpiffeId) -> tuple[httpcore.AsyncConnectionPool, Hbone]:
        """An HTTP client that keeps one connection (one tunnel) alive, as a pooling caller does."""
        backend = Hbone(self, identity)
        pool = httpcore.AsyncConnectionPool(network_backend=backend, max_connections=1)
        self.clients.append(pool)
        return pool, backend

    def lines(self) -> list[dict[str, Any]]:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def listening_sockets() -> set[tuple[str, int]]:
    """The TCP addresses this process listens on (Linux /proc): whatever the code under test bound."""
    owned = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            owned.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and f"socket:[{inode}]" in owned:
                    address, port = local.split(":")
                    host = (
                        ".".join(str(b) for b in reversed(bytes.fromhex(address)))
                        if len(address) == 8
                        else address
                    )
                    found.add((host, int(port, 16)))
    return found


def pod() -> Pod:
    return Pod(
        name="wp-0",
        namespace="shop",
        deployment="wp",
        service_account="wp",
        labels={},
        node="test-node",
        ip="127.0.0.1",
        app_ip="127.0.0.1",
        ports=[PodPort("http", 8080)],
        image="",
        role="waypoint",
        gateway=GATEWAY,
    )


@asynccontextmanager
async def running(
    directory: Path,
    log_path: Path | None = None,
    body_timeout: float = BODY_TIMEOUT,
    *,
    guard_timeout: float = GUARD_TIMEOUT,
    manifests: str = MANIFESTS,
    backend: Any = None,
    others: dict[str, Any] | None = None,
) -> AsyncIterator[Waypoint]:
    """The waypoint, wired as `Waypoint.run` wires it, until the block ends.

    `manifests` configure it (the echo route by default); `backend` is the ASGI app every
    backend connection reaches (the echo server by default); `others` maps a host to the ASGI
    app (served too) or the port its connections reach instead.
    """
    ca = CertificateAuthority.load_or_create(directory / "ca")
    secrets = await secrets_for(ca, directory / "certs", WAYPOINT_ID)
    (directory / "bundle").mkdir(exist_ok=True)
    (directory / "bundle" / "bundle.yaml").write_text(manifests)
    config = WaypointConfig.from_manifests(load_bundle(directory / "bundle").objects, "shop", "wp")
    echo = Echo()
    log_path = log_path or directory / "waypoint.jsonl"
    metrics = WaypointMetrics()
    async with contextlib.AsyncExitStack() as stack:
        echo_url = await stack.enter_async_context(serving(echo if backend is None else backend))
        echo_port = int(echo_url.rsplit(":", 1)[1])
        ports = {}
        for host, target in (others or {}).items():
            url = target if isinstance(target, int) else await stack.enter_async_context(serving(target))
            ports[host] = url if isinstance(url, int) else int(url.rsplit(":", 1)[1])
        egress = ToBackend(echo_port, ports)
        pool = httpcore.AsyncConnectionPool(network_backend=egress)
        the_pod = pod()
        ingress = Ingress(the_pod, WAYPOINT_ID, secrets, Topology(subnet=0, pods=[the_pod]))
        app = WaypointApp(
            GATEWAY,
            lambda: config,
            list,
            ingress,
            Topology(subnet=0, pods=[the_pod]),
            pool,
            WaypointLog(log_path, GATEWAY),
            metrics,
            TracerProvider().get_tracer("test"),
            body_timeout=body_timeout,
            guard_timeout=guard_timeout,
        )
        http = TunnelHttp(app)
        task = asyncio.create_task(http.serve())
        async with asyncio.timeout(DEADLINE):
            while not http.started:
                assert not task.done(), "the HTTP layer stopped before it started"
                await asyncio.sleep(0.005)
        hbone = await ingress.serve(0, http, app.handshake_refused)
        waypoint = Waypoint(
            secrets,
            hbone.sockets[0].getsockname()[1],
            log_path,
            metrics,
            ingress,
            echo,
            app,
            ("127.0.0.1", echo_port),
            http,
            egress,
        )
        try:
            yield waypoint
        finally:
            echo.release.set()
            for client in waypoint.clients:
                await client.aclose()
            await shutdown(hbone)
            http.exit()
            await task
            await pool.aclose()


async def read_to_end(tunnel: Tunnel) -> bytes:
    """What a tunnel delivers until it ends, however it ends."""
    data = b""
    with contextlib.suppress(Exception):
        while chunk := await tunnel.read():
            data += chunk
    return data
