"""ztunnel's Prometheus metrics, with Istio's standard names and labels, plus two of our own.

What real ztunnel exports (src/proxy/metrics.rs, inbound.rs, outbound.rs), mirrored here:
only L4 series, `istio_tcp_connections_opened/closed_total`, `istio_tcp_sent/received_bytes_total`
and (Istio 1.29 on) `istio_tcp_connections_failed_total`, with `CommonTrafficLabels`; no
`istio_requests_total` (HTTP request metrics are the waypoint's). A connection counts as
opened, with `response_flags="-"`, as soon as ztunnel knows both ends (before policy is
asked, before the CONNECT is answered), and as closed exactly once, with the flag that says
why it ended. A policy refusal is `DENY` at the destination's ztunnel (`reporter="destination"`);
the source's ztunnel only sees its CONNECT answered 401 and records `CONNECT`.

Ours, which real ztunnel has no counterpart for: the denial counter names the deciding policy
and ztunnel's reason (real ztunnel says that only in its access log), and the attempt counter
says the outcome of every connection a pod tried. The alert annotations quote them; the
`trustusbank_ztunnel_info` gauge tells the alert rules that this ztunnel exports them, so they
read those rather than its `istio_tcp_*` series, and fire once per event.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from trustusbank.mesh.ztunnel.labels import peer_labels

PEER_LABELS = tuple(peer_labels("source", None, None, None, None, None, False))

ATTEMPT_LABELS = (
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "destination_workload",
    "destination_workload_namespace",
    "destination_service_name",
    "destination_service_namespace",
    "outcome",
)


class ZtunnelMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.opened = Counter(
            "istio_tcp_connections_opened",
            "The total number of TCP connections opened",
            PEER_LABELS,
            registry=self.registry,
        )
        self.closed = Counter(
            "istio_tcp_connections_closed",
            "The total number of TCP connections closed",
            PEER_LABELS,
            registry=self.registry,
        )
        self.failed = Counter(
            "istio_tcp_connections_failed",
            "The total number of TCP connections that failed to establish (unstable)",
            PEER_LABELS,
            registry=self.registry,
        )
        self.sent = Counter(
            "istio_tcp_sent_bytes",
            "The size of total bytes sent during response in case of a TCP connection",
            PEER_LABELS,
            registry=self.registry,
        )
        self.received = Counter(
            "istio_tcp_received_bytes",
            "The size of total bytes received during request in case of a TCP connection",
            PEER_LABELS,
            registry=self.registry,
        )
        self.denied = Counter(
            "trustusbank_authz_denials",
            "Connections refused by AuthorizationPolicy at this node (policy: the deciding one if any).",
            (
                "policy",
                "reason",
                "source_principal",
                "destination_workload",
                "destination_workload_namespace",
            ),
            registry=self.registry,
        )
        self.attempts = Counter(
            "trustusbank_outbound_attempts",
            "Outbound connections pods tried, by intended destination and outcome (allowed, denied, error).",
            ATTEMPT_LABELS,
            registry=self.registry,
        )
        self.handshake_errors = Counter(
            "trustusbank_hbone_handshake_errors",
            "Refused mTLS handshakes.",
            ("reason",),
            registry=self.registry,
        )
        self.info = Gauge(
            "trustusbank_ztunnel_info",
            "Always 1: this node proxy also exports trustusbank_authz_denials_total and "
            "trustusbank_outbound_attempts_total, which the alert rules read instead of "
            "its istio_tcp_* series.",
            registry=self.registry,
        )
        self.info.set(1)
