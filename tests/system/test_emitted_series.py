"""Every alert rule and dashboard panel reads only series that the components the alert evaluator
scrapes expose (the panels' series kube-prometheus-stack provides itself aside).

A rule naming a series nobody exposes is valid PromQL that selects nothing: the alert can
never fire (a panel stays empty), and nothing says so. So the rules of deploy/10-observability
and the dashboard's panels are checked against the metric names scraped, here and now, from
every target the evaluator scrapes (node proxies, waypoints, agents, the MCP guard; `alerts.targets`). A
metric family a component declares but has not incremented yet counts as exposed: its series
are born at their first increment, which the rules and panels are written to see
(deploy/10-observability/prometheus-rules.yaml says how).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.paths import DEPLOY
from tests.system.conftest import Cluster
from trustusbank.alerts.targets import Target, targets_from_topology
from trustusbank.cluster.topology import Topology
from trustusbank.manifests.prometheus import rules_in_files
from trustusbank.promql.selectors import unknown_series
from trustusbank.telemetry import dashboard

RULES = DEPLOY / "10-observability" / "prometheus-rules.yaml"

# The sample names of each metric type besides the family's own name, as the text format writes them.
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}


def exposed_names(text: str) -> set[str]:
    """The metric names a scrape of `text` yields, suffixed as exposed (`_total`, `_bucket`...)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def _from_the_host(target: Target, topology: Topology) -> str:
    """The target's URL as the test process can reach it. The evaluator reaches an agent through
    its node proxy's capture at the pod address; from outside the mesh the same server listens
    on the pod's application address. Node proxies and waypoints are not captured."""
    url = urlsplit(target.url)
    pod = topology.pod_by_ip(url.hostname or "")
    if pod is None or pod.role != "workload":
        return target.url
    return urlunsplit(url._replace(netloc=f"{pod.app_ip}:{url.port}"))


def scraped_names(cluster: Cluster) -> tuple[set[str], int]:
    """Every metric name the evaluator's targets expose now, and how many targets there are."""
    topology = cluster.topology
    targets = targets_from_topology(topology)
    assert {t.job for t in targets} == {"ztunnel", "waypoint", "agent", "mcp-guard"}, targets
    assert len([t for t in targets if t.job == "ztunnel"]) == len(topology.nodes)

    exposed: set[str] = set()
    with httpx.Client(trust_env=False, timeout=10) as http:
        for target in targets:
            response = http.get(_from_the_host(target, topology))
            assert response.status_code == 200, f"{target.job} {target.url}: {response.status_code}"
            names = exposed_names(response.text)
            assert names, f"{target.job} {target.url} exposes no metrics"
            exposed |= names
    return exposed, len(targets)


def test_every_alert_rule_reads_only_series_the_scraped_components_expose(cluster: Cluster) -> None:
    exposed, targets = scraped_names(cluster)
    queries = [
        (f"alert {rule.name}", rule.expr_text) for group in rules_in_files([RULES]) for rule in group.rules
    ]
    assert [name for name, _ in queries] == [
        "alert IstioAuthZDeny",
        "alert BankToAttackerAttempt",
        "alert KagentAccessPolicyDeny",
        "alert McpToolDrift",
    ]
    missing = unknown_series(queries, exposed)
    assert not missing, (
        f"{RULES.name} reads series that no scraped component exposes:\n"
        + "\n".join(f"  {problem}" for problem in missing)
        + f"\nexposed by {targets} targets: {', '.join(sorted(exposed))}"
    )


def test_every_dashboard_panel_reads_only_series_the_scraped_components_expose(cluster: Cluster) -> None:
    """The DORA evidence panels' PromQL, but for what kube-prometheus-stack provides by itself
    (`dashboard.EXTERNAL`, which no component of ours may expose)."""
    exposed, targets = scraped_names(cluster)
    external = {series.name for series in dashboard.EXTERNAL}
    assert not external & exposed
    missing = [
        problem
        for problem in unknown_series(dashboard.promql_queries(), exposed)
        if problem.selector.split("{", 1)[0] not in external
    ]
    assert not missing, (
        "the DORA evidence dashboard reads series that no scraped component exposes:\n"
        + "\n".join(f"  {problem}" for problem in missing)
        + f"\nexposed by {targets} targets: {', '.join(sorted(exposed))}"
    )
