"""The "DORA evidence" dashboard as data: what each panel asks, and what an auditor reads from it.

One set of panel definitions with several readers: Kubernetes mode turns it into Grafana's JSON
(`k8s/grafana.py`), the embedded console is to draw the same panels, and the tests check every
PromQL query against the parser and the series the components really expose. So nothing here
is Grafana's: no grid, no plugin ids, no data source uids.

The series are the ones the alert rules read (deploy/10-observability/prometheus-rules.yaml):
the node proxies' L4 denials and outbound attempts, the waypoint's policy denials (agentgateway's
name), the agents' AccessPolicy denials (kagent's name). Two come from kube-prometheus-stack
itself and from no component of ours: `EXTERNAL` names them and who provides them.

L4 panels read Istio's series, which both the embedded ztunnel and real ztunnel export (a refusal:
closed by the destination with `response_flags="DENY"`; an attempt: opened by the source). What
only our node proxy knows (the deciding policy, the outcome of an attempt) comes from its own
counters, and Istio's series stand in for them from node proxies without `trustusbank_ztunnel_info`
(a real cluster's), so a panel is never empty on a cluster and never counts one event twice.

Counters are read as the alert rules read them: "how many in the 5 minutes before this point",
where a series born inside the window counts with its whole value (our counters appear at their
first increment, which `increase()` alone reads as no increase: one denial would never show).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TITLE = "DORA evidence"
WINDOW = "5m"

Kind = Literal["timeseries", "stat", "table", "logs"]
Language = Literal["promql", "logql"]
Unit = Literal["count", "none"]  # a number of events, or rows/lines with no numeric unit


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""  # a series' name, with {{label}} for label values: "{{policy}}"
    language: Language = "promql"
    instant: bool = False  # the value now, one row per series (tables), not a series over time


@dataclass(frozen=True)
class Panel:
    id: int
    title: str
    kind: Kind
    queries: tuple[Query, ...]
    unit: Unit
    description: str  # what an auditor reads from it


@dataclass(frozen=True)
class Variable:
    """A choice the reader makes once for the whole dashboard, referenced as `$name` in queries."""

    name: str
    label: str
    metric: str  # its values are those of `label_name` on this metric's series
    label_name: str
    all_value: str = ".*"  # what "All" stands for (a regex: the queries match with =~)


@dataclass(frozen=True)
class ExternalSeries:
    """A series the dashboard reads that no trustusbank component exposes."""

    name: str
    provider: str
    what: str


EXTERNAL = (
    ExternalSeries(
        "ALERTS",
        "Prometheus (kube-prometheus-stack), evaluating deploy/10-observability's PrometheusRule",
        "one series per alert pending or firing, with the rule's labels and alertstate",
    ),
    ExternalSeries(
        "kube_pod_container_info",
        "kube-state-metrics (kube-prometheus-stack)",
        "one series per container, with image (the tag) and image_id (the digest the kubelet ran)",
    ),
)

# What the alert rules call "the bank": its namespaces and the platform's.
BANK = 'source_workload_namespace=~"trustusbank-bank-.*|trustusbank-platform"'
ATTACKER = 'destination_workload_namespace="external-attacker"'
EXFIL = f"trustusbank_outbound_attempts_total{{{BANK}, {ATTACKER}}}"
L4_DENIALS = "trustusbank_authz_denials_total"
# Istio's: the refusals a destination's ztunnel closed as DENY, the connections a source's opened.
L4_REFUSED = 'istio_tcp_connections_closed_total{reporter="destination", response_flags="DENY"}'
EXFIL_OPENED = f'istio_tcp_connections_opened_total{{reporter="source", {BANK}, {ATTACKER}}}'
EXFIL_REFUSED = (
    f'istio_tcp_connections_closed_total{{reporter="destination", response_flags="DENY", {BANK}, {ATTACKER}}}'
)
OURS = "trustusbank_ztunnel_info"  # 1 on a node proxy that exports L4_DENIALS and EXFIL's counter
MCP_DENIALS = "agentgateway_policy_denials_total"
A2A_DENIALS = "kagent_accesspolicy_denied_total"

# The converter as deploy/05-mcp-servers/currency-converter.yaml runs it.
CONVERTER_NAMESPACE = "trustusbank-bank-vendors"
CONVERTER_DEPLOYMENT = "currency-converter"
CONVERTER_CONTAINER = "server"

# ztunnel's access log as a cluster's log collector labels it (namespace, container: what
# Promtail's and Alloy's Kubernetes discovery set), ztunnel's text format parsed by logfmt
# (`src.identity` becomes `src_identity`). A refused connection's line says
# `error="connection closed due to policy rejection: <why>"`.
ZTUNNEL_LOG = '{namespace="istio-system", container="istio-proxy"}'
POLICY_REJECTION = "policy rejection"

IDENTITY = Variable("identity", "Offending identity", L4_REFUSED, "source_principal")


def in_window(selector: str) -> str:
    """How much `selector` counted in the `WINDOW` before each point, a series born in it included."""
    name = selector.split("{", 1)[0]
    return f"({selector} unless {name} offset {WINDOW}) or increase({selector}[{WINDOW}])"


def elsewhere(expr: str, *, window: bool = True) -> str:
    """`expr` as read from node proxies without our counters (a real cluster's ztunnel); one with
    them is left to the query reading those. `window`: the marker seen in the `WINDOW`, so a node
    proxy that went down while its counts are still in the window stays ours."""
    marker = f"last_over_time({OURS}[{WINDOW}])" if window else OURS
    return f"({expr}) unless on(job, instance) {marker}"


PANELS = (
    Panel(
        1,
        "Alerts firing now",
        "stat",
        (Query('count(ALERTS{alertstate="firing"})', "firing"),),
        "count",
        "How many SOC alerts fire at this moment (IstioAuthZDeny, BankToAttackerAttempt, "
        "KagentAccessPolicyDeny, McpToolDrift). Zero while the defence holds and nothing is tried.",
    ),
    Panel(
        2,
        "Bank → attacker connections, by outcome",
        "stat",
        (
            Query(f"sum by (outcome) ({EXFIL})", "{{outcome}}"),
            Query(f"sum({elsewhere(EXFIL_OPENED, window=False)})", "attempted"),
            Query(f"sum({elsewhere(EXFIL_REFUSED, window=False)})", "denied"),
        ),
        "count",
        "Every connection a bank workload tried towards external-attacker, counted by the "
        "source's node proxy whatever the destination answered. `allowed` is data that could "
        "leave; `denied` is an exfiltration the L4 policy stopped. On a cluster ztunnel counts "
        "no outcome: `attempted` (opened by the source) against `denied` (refused by the destination).",
    ),
    Panel(
        3,
        "Alerts firing, by rule",
        "timeseries",
        (Query('count by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}"),),
        "count",
        "When each alert rule started and stopped firing: the time the SOC was told, to set "
        "against the first denial and the quarantine.",
    ),
    Panel(
        4,
        "Denials by policy",
        "timeseries",
        (
            Query(
                f"sum by (policy, reason) ({in_window(L4_DENIALS)})",
                "L4 {{policy}}: {{reason}}",
            ),
            Query(
                f"sum by (route, reason) ({in_window(MCP_DENIALS)})",
                "MCP {{route}}: {{reason}}",
            ),
            Query(
                "sum by (destination_workload_namespace, destination_workload) "
                f"({elsewhere(in_window(L4_REFUSED))})",
                "L4 at {{destination_workload_namespace}}/{{destination_workload}} (policy: ztunnel's log)",
            ),
        ),
        "count",
        f"Connections ztunnel refused by AuthorizationPolicy (L4, by the deciding policy) and MCP "
        f"calls the waypoint refused (by route and reason: tool allowlist, rate limit, no verified "
        f"identity), in the {WINDOW} before each point. Which control stopped what, and when. A "
        f"cluster's ztunnel names the policy only in its access log: there, L4 is by destination.",
    ),
    Panel(
        5,
        "Denials by source identity",
        "timeseries",
        (
            Query(f"sum by (source_principal) ({in_window(L4_REFUSED)})", "{{source_principal}} (L4)"),
            Query(f"sum by (source_principal) ({in_window(MCP_DENIALS)})", "{{source_principal}} (MCP)"),
            Query(f"sum by (source_principal) ({in_window(A2A_DENIALS)})", "{{source_principal}} (A2A)"),
        ),
        "count",
        f"The same refusals by the caller's SPIFFE identity, proven by its mTLS certificate, in "
        f"the {WINDOW} before each point: which workload misbehaved, at which layer.",
    ),
    Panel(
        6,
        "Bank → attacker: attempts vs blocks",
        "timeseries",
        (
            Query(f"sum by (outcome) ({in_window(EXFIL)})", "{{outcome}}"),
            Query(f"sum({elsewhere(in_window(EXFIL_OPENED))})", "attempted"),
            Query(f"sum({elsewhere(in_window(EXFIL_REFUSED))})", "denied"),
        ),
        "count",
        f"Connections from the bank towards external-attacker in the {WINDOW} before each point, "
        "allowed against denied: before the defence set they are allowed (Act 2), after it "
        "every one is denied (Act 3). On a cluster: attempted against denied.",
    ),
    Panel(
        7,
        "Alert rules and their state",
        "table",
        (
            Query(
                "max by (alertname, alertstate, severity, offender, source_principal) (ALERTS)",
                instant=True,
            ),
        ),
        "none",
        "Every alert pending or firing now, with its severity and offender (the quarantine file "
        "it names). A rule that is not listed is inactive.",
    ),
    Panel(
        8,
        "Converter image: the digest that runs",
        "table",
        (
            Query(
                "max by (namespace, pod, container, image, image_id) (kube_pod_container_info{"
                f'namespace="{CONVERTER_NAMESPACE}", pod=~"{CONVERTER_DEPLOYMENT}-.*", '
                f'container="{CONVERTER_CONTAINER}"}})',
                instant=True,
            ),
        ),
        "none",
        "The third-party converter's image: the tag deploy/ names (image) and the digest the "
        "kubelet actually ran (image_id). After the rug pull the tag is the same and the digest "
        "is not: the supply-chain change, on the record.",
    ),
    Panel(
        9,
        "Deny log lines of the offending identity",
        "logs",
        (
            Query(
                f'{ZTUNNEL_LOG} |= "{POLICY_REJECTION}" | logfmt | src_identity=~"${IDENTITY.name}"',
                language="logql",
            ),
        ),
        "none",
        "ztunnel's access log line for every connection refused by policy, for the identity chosen "
        "above: source and destination workloads and SPIFFE identities, and the policy that "
        "decided. A line that carries a trace id links to its trace in Tempo.",
    ),
)

VARIABLES = (IDENTITY,)


def promql_queries() -> list[tuple[str, str]]:
    """Every PromQL query, named "panel <id> <title>" (the variable's too), for the checks that
    read alert rules and panels alike (`promql.selectors.unknown_series`)."""
    named = [
        (f"panel {panel.id} {panel.title}", query.expr)
        for panel in PANELS
        for query in panel.queries
        if query.language == "promql"
    ]
    return named + [(f"variable {v.name}", v.metric) for v in VARIABLES]
