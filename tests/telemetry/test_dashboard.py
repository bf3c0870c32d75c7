"""The DORA evidence panels: every query parses and reads a series someone exposes, and the panels
show what they say when the real components' counters are scraped and evaluated.

The counters come from the components' own metric classes, served by the production /metrics
app on 127.0.0.1 and scraped by the alert evaluator's scraper; the queries run on the project's
PromQL engine, the one the embedded console is to draw these panels with.
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tests.paths import DEPLOY
from tests.serving import serving
from trustusbank.agents.a2a.metrics import AgentMetrics
from trustusbank.alerts.scrape import Scraper
from trustusbank.alerts.targets import Target
from trustusbank.manifests.kagent.spec import AgentSpec, ModelSpec
from trustusbank.mesh.waypoint.telemetry import WaypointMetrics
from trustusbank.mesh.ztunnel.access_log import AccessLog, ConnectionRecord
from trustusbank.mesh.ztunnel.inbound import POLICY_REJECTION
from trustusbank.mesh.ztunnel.labels import peer_labels
from trustusbank.mesh.ztunnel.metrics import ZtunnelMetrics
from trustusbank.mesh.ztunnel.results import ConnectionResult, ResponseFlag
from trustusbank.promql.ast import metric_names
from trustusbank.promql.engine import Engine
from trustusbank.promql.parser import parse
from trustusbank.promql.selectors import unknown_series
from trustusbank.promql.series import SeriesStore, labels_of
from trustusbank.telemetry import dashboard
from trustusbank.telemetry.admin import control_app
from trustusbank.telemetry.dashboard import EXTERNAL, PANELS, VARIABLES, Panel

CONVERTER = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
SUPPORT_BOT = "spiffe://cluster.local/ns/trustusbank-bank-agents/sa/support-bot"
DENY_POLICY = "external-attacker/deny-bank-to-attacker"
ATTACKER = "spiffe://cluster.local/ns/external-attacker/sa/mock-attacker"
# The sample names of each metric type besides the family's own name, as the text format writes them.
Scrape = Callable[[float], Awaitable[None]]
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def declared(*registries: CollectorRegistry) -> set[str]:
    """Every sample name the registries' metric families expose, incremented yet or not."""
    return {
        family.name + suffix
        for registry in registries
        for family in registry.collect()
        for suffix in SUFFIXES[family.type]
    }


def agent_registry() -> CollectorRegistry:
    spec = AgentSpec(
        "support-bot", "trustusbank-bank-agents", "", "", ModelSpec("m/m", "openai", "scripted-model")
    )
    return AgentMetrics(spec, CollectorRegistry()).registry


def panel(panel_id: int) -> Panel:
    [found] = [p for p in PANELS if p.id == panel_id]
    return found


def test_every_promql_query_parses() -> None:
    queries = dashboard.promql_queries()
    assert len(queries) == sum(len(p.queries) for p in PANELS if p.kind != "logs") + len(VARIABLES)
    for name, text in queries:
        assert metric_names(parse(text)), name  # every one selects a metric by its name


def test_panel_ids_are_unique_and_each_panel_says_what_it_shows() -> None:
    ids = [p.id for p in PANELS]
    assert len(ids) == len(set(ids))
    assert {p.kind for p in PANELS} == {"timeseries", "stat", "table", "logs"}
    for p in PANELS:
        assert p.queries, p.id
        assert len(p.description) > 40, p.id
        assert {q.language for q in p.queries} == ({"logql"} if p.kind == "logs" else {"promql"}), p.id
        assert all(q.instant for q in p.queries) == (p.kind == "table"), p.id


def test_every_query_reads_a_series_a_component_declares_or_kube_prometheus_stack_provides() -> None:
    ours = declared(ZtunnelMetrics().registry, WaypointMetrics().registry, agent_registry())
    external = {series.name for series in EXTERNAL}
    assert not external & ours  # external means no component of ours exposes it
    assert all(series.provider and series.what for series in EXTERNAL)

    assert unknown_series(dashboard.promql_queries(), ours | external) == []
    read = {name for _, text in dashboard.promql_queries() for name in metric_names(parse(text))}
    assert external <= read  # no stale entry: each external series is read by some panel
    # The four kinds of evidence: L4 denials, waypoint denials, agent denials, exfil attempts.
    assert {
        dashboard.L4_DENIALS,
        dashboard.MCP_DENIALS,
        dashboard.A2A_DENIALS,
        "trustusbank_outbound_attempts_total",
    } <= read


@asynccontextmanager
async def scraping(
    store: SeriesStore, *registries: CollectorRegistry, cluster: bool = False
) -> AsyncIterator[Scrape]:
    """Scrapes of `registries`, each served by the production /metrics app, into `store`: one
    target per registry for the whole test, as Prometheus sees a running component. `cluster`
    keeps what a real ztunnel would export of a node proxy's: Istio's series, none of ours."""
    async with AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serving(control_app(r, lambda: True))) for r in registries]
        wanted = declared(*registries)
        if cluster:
            wanted = {name for name in wanted if not name.startswith("trustusbank_")}
        scraper = Scraper(store, wanted=wanted)
        stack.push_async_callback(scraper.close)
        targets = [Target("component", f"{url}/metrics") for url in urls]

        async def scrape(t: float) -> None:
            await scraper.scrape(targets, t=t)

        yield scrape


def evaluate(store: SeriesStore, p: Panel, t: float, query: int = 0) -> dict[tuple[str, ...], float]:
    """The panel's query at `t`, by the values of the labels it groups by, in grouping order."""
    expr = parse(p.queries[query].expr)
    grouping: tuple[str, ...] = getattr(expr, "grouping", ())
    return {
        tuple(sample.get(name) for name in grouping): sample.value for sample in Engine(store).vector(expr, t)
    }


def exfil_labels(reporter: str) -> dict[str, str]:
    labels = peer_labels(reporter, None, CONVERTER, None, ATTACKER, None, True)
    return labels | {
        "source_workload": "currency-converter",
        "source_workload_namespace": "trustusbank-bank-vendors",
        "destination_workload": "mock-attacker",
        "destination_workload_namespace": "external-attacker",
    }


def refuse(metrics: ZtunnelMetrics, times: int) -> None:
    """As the attacker's node proxy records refusals (inbound.py): our counter names the policy,
    Istio's counts the connection opened, then closed as DENY; series appear at their first count."""
    for _ in range(times):
        metrics.denied.labels(
            policy=DENY_POLICY,
            reason="explicitly denied",
            source_principal=CONVERTER,
            destination_workload="mock-attacker",
            destination_workload_namespace="external-attacker",
        ).inc()
        ConnectionResult(metrics, exfil_labels("destination")).record(ResponseFlag.DENY)


def attempt_refused(metrics: ZtunnelMetrics) -> None:
    """As the converter's node proxy records a refused exfil (outbound.py): opened, then CONNECT."""
    ConnectionResult(metrics, exfil_labels("source")).record(ResponseFlag.CONNECT)


async def test_a_single_denial_shows_then_ages_out_of_the_window() -> None:
    """A counter is born at its first increment (value 1): the panels still count it, as the
    alert rules do, and forget it once it is older than the window."""
    metrics = ZtunnelMetrics()
    store = SeriesStore()
    async with scraping(store, metrics.registry) as scrape:
        await scrape(1000)
        assert evaluate(store, panel(4), 1000) == {}  # nothing counted yet, nothing shown
        refuse(metrics, 1)
        await scrape(1015)
        assert evaluate(store, panel(4), 1015) == {(DENY_POLICY, "explicitly denied"): 1}
        assert evaluate(store, panel(4), 1015, query=2) == {}  # our node proxy: said by policy, once
        assert evaluate(store, panel(5), 1015) == {(CONVERTER,): 1}

        refuse(metrics, 2)
        await scrape(1100)
        assert evaluate(store, panel(5), 1100) == {(CONVERTER,): 3}
        await scrape(1350)
        await scrape(1400)
        assert evaluate(store, panel(5), 1400) == {(CONVERTER,): 0}  # nothing new in (1100, 1400]


async def test_on_a_clusters_series_the_l4_panels_show_the_same_refusals_without_the_policy() -> None:
    """Real ztunnel exports Istio's series only: the panels that would read our counters read
    those instead, and on our node proxy (which exports both) they stay empty: counted once."""
    metrics = ZtunnelMetrics()
    refuse(metrics, 2)
    attempt_refused(metrics)
    attempt_refused(metrics)
    on_cluster, embedded = SeriesStore(), SeriesStore()
    async with scraping(on_cluster, metrics.registry, cluster=True) as scrape:
        await scrape(1000)
    async with scraping(embedded, metrics.registry) as scrape:
        await scrape(1000)

    attacker = ("external-attacker", "mock-attacker")
    assert evaluate(on_cluster, panel(4), 1000) == {}
    assert evaluate(on_cluster, panel(4), 1000, query=2) == {attacker: 2}
    assert evaluate(on_cluster, panel(5), 1000) == {(CONVERTER,): 2}
    assert evaluate(embedded, panel(5), 1000) == {(CONVERTER,): 2}  # Istio's on both runtimes
    for store, shown in ((on_cluster, {(): 2}), (embedded, {})):
        assert evaluate(store, panel(2), 1000, query=1) == shown  # attempted
        assert evaluate(store, panel(2), 1000, query=2) == shown  # denied
        assert evaluate(store, panel(6), 1000, query=1) == shown
        assert evaluate(store, panel(6), 1000, query=2) == shown
    assert evaluate(embedded, panel(4), 1000, query=2) == {}


async def test_waypoint_and_agent_denials_are_told_apart_by_identity() -> None:
    waypoint, agent = WaypointMetrics(), agent_registry()
    waypoint.denied.labels("bank-waypoint", "currency-converter", "mcp authorization", SUPPORT_BOT).inc()
    store = SeriesStore()
    async with scraping(store, waypoint.registry, agent) as scrape:
        await scrape(1000)
    assert evaluate(store, panel(4), 1000, query=1) == {("currency-converter", "mcp authorization"): 1}
    assert evaluate(store, panel(5), 1000, query=1) == {(SUPPORT_BOT,): 1}
    assert evaluate(store, panel(5), 1000, query=2) == {}  # no agent refused anyone


async def test_the_exfil_panels_count_only_the_bank_towards_the_attacker() -> None:
    metrics = ZtunnelMetrics()

    def attempt(namespace: str, destination: str, outcome: str) -> Any:
        return metrics.attempts.labels(
            source_workload="currency-converter",
            source_workload_namespace=namespace,
            source_principal=CONVERTER,
            destination_workload="mock-attacker" if destination == "external-attacker" else "fx-api",
            destination_workload_namespace=destination,
            destination_service_name="x",
            destination_service_namespace=destination,
            outcome=outcome,
        )

    attempt("trustusbank-bank-vendors", "external-attacker", "allowed").inc(2)
    attempt("trustusbank-bank-vendors", "external-attacker", "denied").inc()
    attempt("trustusbank-platform", "external-attacker", "denied").inc()
    attempt("trustusbank-bank-vendors", "external-fx", "allowed").inc(5)  # a legitimate call
    attempt("external-fx", "external-attacker", "allowed").inc(7)  # not the bank
    store = SeriesStore()
    async with scraping(store, metrics.registry) as scrape:
        await scrape(1000)
    assert evaluate(store, panel(2), 1000) == {("allowed",): 2, ("denied",): 2}
    assert evaluate(store, panel(6), 1000) == {("allowed",): 2, ("denied",): 2}


def test_the_alert_panels_read_prometheus_alerts_series() -> None:
    store = SeriesStore()
    for state, name in (("firing", "BankToAttackerAttempt"), ("firing", "IstioAuthZDeny"), ("pending", "X")):
        labels = {"__name__": "ALERTS", "alertname": name, "alertstate": state, "severity": "warning"}
        store.append(labels_of(labels), 1000, 1)
    assert evaluate(store, panel(1), 1000) == {(): 2}
    assert evaluate(store, panel(3), 1000) == {("BankToAttackerAttempt",): 1, ("IstioAuthZDeny",): 1}
    assert len(evaluate(store, panel(7), 1000)) == 3  # pending ones too: the state is a column


def test_the_image_panel_selects_the_converter_deploy_runs() -> None:
    documents = yaml.safe_load_all((DEPLOY / "05-mcp-servers" / "currency-converter.yaml").read_text())
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["metadata"]["namespace"] == dashboard.CONVERTER_NAMESPACE
    assert deployment["metadata"]["name"] == dashboard.CONVERTER_DEPLOYMENT
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == dashboard.CONVERTER_CONTAINER

    store = SeriesStore()
    image = container["image"]
    for namespace, pod in (
        (dashboard.CONVERTER_NAMESPACE, "currency-converter-7d4b9c-x2x9z"),
        ("trustusbank-bank-mcp", "account-mcp-5f6c7d-abcde"),
    ):
        labels = {
            "__name__": "kube_pod_container_info",
            "namespace": namespace,
            "pod": pod,
            "container": "server",
            "image": image,
            "image_id": "localhost:5001/acme-fx/currency-converter@sha256:" + "ab" * 32,
            "uid": pod,
        }
        store.append(labels_of(labels), 1000, 1)
    [row] = Engine(store).vector(parse(panel(8).queries[0].expr), 1000)
    assert (row.get("pod"), row.get("image")) == ("currency-converter-7d4b9c-x2x9z", image)
    assert row.get("image_id").endswith("ab" * 32)


def logfmt(line: str) -> dict[str, str]:
    """The fields Loki's logfmt stage extracts from a line: keys with `.` become `_`; bare words
    (the time, the level, the message) have no value."""
    pairs = [word.split("=", 1) for word in shlex.split(line) if "=" in word]
    return {key.replace(".", "_"): value for key, value in pairs}


def test_the_deny_log_query_matches_the_line_ztunnel_writes_for_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = AccessLog(tmp_path / "ztunnel.jsonl", node="node-1")
    refused = ConnectionRecord(
        "inbound",
        "10.0.0.5:41000",
        "10.0.0.9:15008",
        src_identity=CONVERTER,
        dst_identity="spiffe://cluster.local/ns/external-attacker/sa/mock-attacker",
        error=POLICY_REJECTION.format(reason=f"explicitly denied by: {DENY_POLICY}"),
    )
    allowed = ConnectionRecord("inbound", "10.0.0.6:41001", "10.0.0.9:15008", src_identity=SUPPORT_BOT)
    log.write(refused)
    log.write(allowed)
    refused_line, allowed_line = capsys.readouterr().err.splitlines()

    [query] = panel(9).queries
    assert query.expr.startswith(dashboard.ZTUNNEL_LOG)
    assert f'|= "{dashboard.POLICY_REJECTION}"' in query.expr
    assert dashboard.POLICY_REJECTION in refused_line
    assert dashboard.POLICY_REJECTION not in allowed_line
    assert f'| logfmt | src_identity=~"${dashboard.IDENTITY.name}"' in query.expr
    fields = logfmt(refused_line)
    assert fields["src_identity"] == CONVERTER
    assert fields["error"].endswith(DENY_POLICY)
    # The variable offers the identities ztunnel's DENY closes name (on either runtime): the same population.
    assert (dashboard.IDENTITY.metric, dashboard.IDENTITY.label_name) == (
        dashboard.L4_REFUSED,
        "source_principal",
    )
