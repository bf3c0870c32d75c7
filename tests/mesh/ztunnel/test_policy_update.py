"""A policy update closes the open inbound connections it no longer allows (ztunnel's PolicyWatcher).

The node proxy's inbound side runs in-process on 127.0.0.1 with real mTLS, real HBONE
tunnels, real plaintext sockets and an echo app behind it; only the policy set is a
plain object the test swaps, as a reload would. Each test checks what an operator
would: the peer's connection is cut, the app's side too, the access-log line says why,
the denial counter names the policy, and connections still allowed keep working.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import NoOpTracer

from tests.mesh.identities import CONVERTER, FRAUD_BOT, SUPPORT_BOT
from tests.mesh.secrets import secrets_for
from trustusbank.cluster.topology import Pod, PodPort
from trustusbank.manifests.istio.objects import AuthorizationPolicy, PeerAuthentication
from trustusbank.mesh.hbone import HboneError, HbonePool, HboneRefused, Tunnel, open_tunnel
from trustusbank.mesh.identity import CertificateAuthority, SecretManager, SpiffeId
from trustusbank.mesh.ztunnel.access_log import AccessLog
from trustusbank.mesh.ztunnel.inbound import Inbound
from trustusbank.mesh.ztunnel.metrics import ZtunnelMetrics

VENDORS = "trustusbank-bank-vendors"
DEADLINE = 20  # a guard against hanging, never an assertion about speed
SUPPORT_BOT_DENIED = (
    "connection closed due to policy change: explicitly denied by: " + VENDORS + "/deny-support-bot"
)


def deny_support_bot() -> AuthorizationPolicy:
    spec = {
        "selector": {"matchLabels": {"app": "currency-converter"}},
        "action": "DENY",
        "rules": [{"from": [{"source": {"principals": [SUPPORT_BOT.uri.removeprefix("spiffe://")]}}]}],
    }
    return AuthorizationPolicy.from_spec("deny-support-bot", VENDORS, spec)


@dataclass
class Policies:
    """What the inbound side reads from the node's PolicyStore."""

    authorization: list[AuthorizationPolicy] = field(default_factory=list)
    peer_authentication: list[PeerAuthentication] = field(default_factory=list)
    error: str | None = None


class NoPods:
    def pod_by_ip(self, ip: str) -> Pod | None:
        return None


class Node:
    """The parts of a NodeProxy that Inbound uses, with real access log, metrics and certificates."""

    def __init__(self, secrets: SecretManager, log_path: Path) -> None:
        self.policies = Policies()
        self.access = AccessLog(log_path, "test-node")
        self.metrics = ZtunnelMetrics()
        self.topology = NoPods()
        self.secrets = secrets
        self.namespaces: dict[str, object] = {}  # no pod netns: the cooperative mode's shared loopback

    def identity(self, pod: Pod) -> SpiffeId:
        return SpiffeId("cluster.local", pod.namespace, pod.service_account)


class EchoApp:
    """The pod's app: echoes; after the caller's EOF it answers once more when `answer` is set.

    `ended` tells, per connection (keyed by its first bytes), that the app's input has ended.
    """

    def __init__(self) -> None:
        self.ended: dict[bytes, asyncio.Event] = {}
        self.answer = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(1024)
        ended = self.ended.setdefault(first, asyncio.Event())
        try:
            data = first
            while data:
                writer.write(data)
                await writer.drain()
                data = await reader.read(1024)
            ended.set()
            await self.answer.wait()
            writer.write(b"answer")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            ended.set()
            writer.close()


@dataclass
class Mesh:
    node: Node
    inbound: Inbound
    app: EchoApp
    pod: Pod
    hbone_port: int
    plaintext_port: int
    log_path: Path

    async def tunnel(self, identity: SpiffeId) -> Tunnel:
        await self.node.secrets.get(identity)
        return await open_tunnel(
            "127.0.0.1",
            self.hbone_port,
            authority=f"127.0.0.1:{self.pod.ports[0].port}",
            ssl_context=self.node.secrets.ssl_client_context(identity),
            expected_identity=CONVERTER,
        )

    async def pooled(self, pool: HbonePool, identity: SpiffeId, port: int) -> Tunnel:
        """A tunnel to the pod's `port` on the source's pooled connection, as ztunnel outbound opens it."""
        await self.node.secrets.get(identity)
        return await pool.open_tunnel(
            "127.0.0.1",
            self.hbone_port,
            authority=f"127.0.0.1:{port}",
            source=identity,
            ssl_context=self.node.secrets.ssl_client_context(identity),
            expected_identity=CONVERTER,
        )

    async def records(self, count: int) -> list[dict[str, Any]]:
        """The access log, once it holds at least `count` records (each is written as its connection ends)."""
        async with asyncio.timeout(DEADLINE):
            while True:
                lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
                if len(lines) >= count:
                    return [json.loads(line) for line in lines]
                await asyncio.sleep(0.02)

    def denials(self, policy: str, principal: str, reason: str | None = None) -> float:
        """The denial counter for `policy` ("" for none), with ztunnel's reason (by default a DENY's)."""
        labels = {
            "policy": policy,
            "reason": reason if reason is not None else f"explicitly denied by: {policy}",
            "source_principal": principal,
            "destination_workload": "currency-converter",
            "destination_workload_namespace": VENDORS,
        }
        value = self.node.metrics.registry.get_sample_value("trustusbank_authz_denials_total", labels)
        return value or 0.0

    def closed(self, flags: str, principal: str) -> float:
        """Istio's closed-connection counter for `principal` with `flags`, as real ztunnel records it."""
        return sum(
            s.value
            for family in self.node.metrics.registry.collect()
            for s in family.samples
            if s.name == "istio_tcp_connections_closed_total"
            and (s.labels["response_flags"], s.labels["source_principal"]) == (flags, principal)
        )


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    secrets = await secrets_for(ca, tmp_path / "certs", CONVERTER)
    node = Node(secrets, tmp_path / "ztunnel-test-node.jsonl")
    app = EchoApp()
    app_server = await asyncio.start_server(app.handle, "127.0.0.1", 0)
    app_port = app_server.sockets[0].getsockname()[1]
    admin_server = await asyncio.start_server(app.handle, "127.0.0.1", 0)  # a second port, same app
    admin_port = admin_server.sockets[0].getsockname()[1]
    pod = Pod(
        name="currency-converter-0",
        namespace=VENDORS,
        deployment="currency-converter",
        service_account="currency-converter",
        labels={"app": "currency-converter"},
        node="test-node",
        ip="127.0.0.1",
        app_ip="127.0.0.1",
        ports=[PodPort("http", app_port), PodPort("admin", admin_port)],
        image="localhost:5001/acme-fx/currency-converter:1.0.0",
    )
    inbound = Inbound(node, NoOpTracer())  # type: ignore[arg-type]  # Node stands in for NodeProxy
    hbone = await inbound.serve_hbone(pod, CONVERTER, 0)
    plaintext = await asyncio.start_server(
        functools.partial(inbound.plaintext, pod, app_port), "127.0.0.1", 0
    )
    yield Mesh(
        node,
        inbound,
        app,
        pod,
        hbone.sockets[0].getsockname()[1],
        plaintext.sockets[0].getsockname()[1],
        node.access.path,
    )
    app.answer.set()
    for server in (hbone, plaintext, app_server, admin_server):
        server.close()


async def echoed(tunnel: Tunnel, data: bytes) -> bytes:
    await tunnel.write(data)
    async with asyncio.timeout(DEADLINE):
        return await tunnel.read()


async def read_to_end(tunnel: Tunnel) -> bytes:
    data = b""
    while chunk := await tunnel.read():
        data += chunk
    return data


async def until_released(mesh: Mesh, count: int) -> None:
    async with asyncio.timeout(DEADLINE):
        while len(mesh.inbound.connections) != count:  # noqa: ASYNC110 - the registry has no event to wait on
            await asyncio.sleep(0.02)


async def test_a_new_deny_closes_the_open_tunnel_it_denies_and_keeps_the_others(mesh: Mesh) -> None:
    support, fraud = await mesh.tunnel(SUPPORT_BOT), await mesh.tunnel(FRAUD_BOT)
    assert await echoed(support, b"support") == b"support"
    assert await echoed(fraud, b"fraud") == b"fraud"
    assert mesh.inbound.recheck() == 0, "nothing changed: nothing is closed"
    assert await echoed(support, b"still") == b"still"

    mesh.node.policies.authorization = [deny_support_bot()]
    assert mesh.inbound.recheck() == 1

    async with asyncio.timeout(DEADLINE):
        with pytest.raises(HboneError, match="reset by peer"):
            await support.read()
        await mesh.app.ended[b"support"].wait()
    assert not mesh.app.ended[b"fraud"].is_set()
    assert await echoed(fraud, b"fraud again") == b"fraud again"
    with pytest.raises(HboneRefused) as refused:
        await mesh.tunnel(SUPPORT_BOT)
    assert refused.value.status == 401

    [closed] = [r for r in await mesh.records(2) if r.get("error") == SUPPORT_BOT_DENIED]
    assert closed["src.identity"] == SUPPORT_BOT.uri
    assert closed["dst.workload"] == "currency-converter-0"
    assert (closed["bytes_sent"], closed["bytes_recv"]) == (len(b"supportstill"), len(b"supportstill"))
    # One late close and one refused CONNECT, both by the new policy; both DENY to Istio's counter.
    assert mesh.denials(f"{VENDORS}/deny-support-bot", SUPPORT_BOT.uri) == 2
    assert mesh.denials(f"{VENDORS}/deny-support-bot", FRAUD_BOT.uri) == 0
    assert mesh.closed("DENY", SUPPORT_BOT.uri) == 2
    assert mesh.closed("-", SUPPORT_BOT.uri) == 0
    await until_released(mesh, 1)
    await fraud.close()
    await until_released(mesh, 0)
    await support.close()


async def test_an_unreadable_policy_set_closes_every_open_connection(mesh: Mesh) -> None:
    tunnel = await mesh.tunnel(FRAUD_BOT)
    assert await echoed(tunnel, b"hbone") == b"hbone"
    reader, writer = await asyncio.open_connection("127.0.0.1", mesh.plaintext_port)
    writer.write(b"plain")
    async with asyncio.timeout(DEADLINE):
        assert await reader.readexactly(5) == b"plain"

    mesh.node.policies.error = "policy set unreadable, denying all: bad.yaml"
    assert mesh.inbound.recheck() == 2

    async with asyncio.timeout(DEADLINE):
        with pytest.raises(HboneError):
            await tunnel.read()
        with contextlib.suppress(ConnectionResetError):  # an abort may arrive as a reset
            assert await reader.read() == b""
        await mesh.app.ended[b"hbone"].wait()
        await mesh.app.ended[b"plain"].wait()
    records = await mesh.records(2)
    reason = "connection closed due to policy change: policy set unreadable, denying all: bad.yaml"
    assert sorted((r.get("src.identity", "plaintext"), r.get("error")) for r in records) == [
        ("plaintext", reason),
        (FRAUD_BOT.uri, reason),
    ]
    # The error's detail is in the access log; the counter's label stays one bounded value.
    assert mesh.denials("", FRAUD_BOT.uri, "authorization failed closed") == 1
    assert mesh.denials("", "unknown", "authorization failed closed") == 1
    await until_released(mesh, 0)
    writer.close()
    await tunnel.close()


async def test_strict_mtls_closes_open_plaintext_but_not_hbone(mesh: Mesh) -> None:
    tunnel = await mesh.tunnel(SUPPORT_BOT)
    assert await echoed(tunnel, b"hbone") == b"hbone"
    reader, writer = await asyncio.open_connection("127.0.0.1", mesh.plaintext_port)
    writer.write(b"plain")
    async with asyncio.timeout(DEADLINE):
        assert await reader.readexactly(5) == b"plain"

    strict = PeerAuthentication.from_spec("strict", VENDORS, {"mtls": {"mode": "STRICT"}})
    mesh.node.policies.peer_authentication = [strict]
    assert mesh.inbound.recheck() == 1

    async with asyncio.timeout(DEADLINE):
        await mesh.app.ended[b"plain"].wait()
    [record] = await mesh.records(1)
    assert record["error"] == (
        "connection closed due to policy change: plaintext refused, PeerAuthentication mode is STRICT"
    )
    assert (record["bytes_sent"], record["bytes_recv"]) == (5, 5)
    assert mesh.closed("DENY", "unknown") == 1  # plaintext has no principal; STRICT is policy to ztunnel
    assert await echoed(tunnel, b"hbone again") == b"hbone again"
    writer.close()
    await tunnel.close()


async def test_a_policy_update_between_the_decision_and_the_first_byte_still_applies(mesh: Mesh) -> None:
    """The CONNECT is allowed, then the DENY lands before the tunnel is wired to the app."""
    decide = mesh.inbound._authorize

    def decide_then_update(*args: Any) -> int:
        status = decide(*args)
        mesh.node.policies.authorization = [deny_support_bot()]
        mesh.inbound.recheck()
        return status

    mesh.inbound._authorize = decide_then_update  # type: ignore[method-assign]
    tunnel = await mesh.tunnel(SUPPORT_BOT)
    assert tunnel.status == 200
    async with asyncio.timeout(DEADLINE):
        with pytest.raises(HboneError, match="reset by peer"):
            await tunnel.read()
    [record] = await mesh.records(1)
    assert record["error"] == SUPPORT_BOT_DENIED
    assert mesh.app.ended == {}, "the app was never connected"
    await until_released(mesh, 0)
    await tunnel.close()


async def test_a_half_closed_tunnel_waiting_for_its_answer_is_reset_not_ended(mesh: Mesh) -> None:
    """A caller that has sent everything must not mistake the cut for the app's complete answer."""
    tunnel = await mesh.tunnel(SUPPORT_BOT)
    assert await echoed(tunnel, b"request") == b"request"
    await tunnel.write_eof()
    async with asyncio.timeout(DEADLINE):
        await mesh.app.ended[b"request"].wait()

    mesh.node.policies.authorization = [deny_support_bot()]
    assert mesh.inbound.recheck() == 1
    mesh.app.answer.set()

    async with asyncio.timeout(DEADLINE):
        with pytest.raises(HboneError, match="reset by peer"):
            await read_to_end(tunnel)
    [record] = await mesh.records(1)
    assert record["error"] == SUPPORT_BOT_DENIED
    await tunnel.close()


def deny_support_bot_on(port: int) -> AuthorizationPolicy:
    spec = {
        "selector": {"matchLabels": {"app": "currency-converter"}},
        "action": "DENY",
        "rules": [
            {
                "from": [{"source": {"principals": [SUPPORT_BOT.uri.removeprefix("spiffe://")]}}],
                "to": [{"operation": {"ports": [str(port)]}}],
            }
        ],
    }
    return AuthorizationPolicy.from_spec("deny-support-bot", VENDORS, spec)


async def test_a_new_deny_closes_the_denied_stream_of_a_pooled_connection_not_the_connection(
    mesh: Mesh,
) -> None:
    """Streams to two ports share one pooled connection (one identity pair): ztunnel judges each stream."""
    http_port, admin_port = (port.port for port in mesh.pod.ports)
    pool = HbonePool(enabled=True)
    try:
        web = await mesh.pooled(pool, SUPPORT_BOT, http_port)
        admin = await mesh.pooled(pool, SUPPORT_BOT, admin_port)
        assert pool.connections_opened == 1, "both streams ride one connection"
        [connection] = pool.connections()
        assert await echoed(web, b"web") == b"web"
        assert await echoed(admin, b"admin") == b"admin"

        mesh.node.policies.authorization = [deny_support_bot_on(admin_port)]
        assert mesh.inbound.recheck() == 1

        async with asyncio.timeout(DEADLINE):
            with pytest.raises(HboneError, match="reset by peer"):
                await admin.read()
            await mesh.app.ended[b"admin"].wait()
        assert not connection.is_closed, "the shared connection stays up for the streams still allowed"
        assert await echoed(web, b"web again") == b"web again"
        with pytest.raises(HboneRefused) as refused:
            await mesh.pooled(pool, SUPPORT_BOT, admin_port)
        assert refused.value.status == 401
        another = await mesh.pooled(pool, SUPPORT_BOT, http_port)
        assert await echoed(another, b"new stream") == b"new stream"
        assert pool.connections_opened == 1, "a refused stream did not cost the connection"
        [closed] = [r for r in await mesh.records(2) if r.get("error") == SUPPORT_BOT_DENIED]
        assert closed["dst.addr"] == f"127.0.0.1:{admin_port}"
        for t in (web, admin, another):
            await t.close()
    finally:
        await pool.close()
