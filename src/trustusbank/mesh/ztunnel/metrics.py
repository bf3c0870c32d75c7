"""ztunnel's Prometheus metrics, with Istio's standard names and labels.

`istio_requests_total` counts HBONE CONNECT exchanges (the only request ztunnel
sees), so a refused tunnel shows as `response_code="401"`; the denial counter
is ours and names the policy that decided. The attempt counter is ours too: the
source side counts every connection a pod tried, whatever the destination
answered, so an alert on "the bank tried to reach the attacker" fires whether
or not the defence held.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

PEER_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_service",
    "connection_security_policy",
)

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
            "istio_tcp_connections_opened", "Connections opened.", PEER_LABELS, registry=self.registry
        )
        self.closed = Counter(
            "istio_tcp_connections_closed", "Connections closed.", PEER_LABELS, registry=self.registry
        )
        self.sent = Counter("istio_tcp_sent_bytes", "Bytes sent.", PEER_LABELS, registry=self.registry)
        self.received = Counter(
            "istio_tcp_received_bytes", "Bytes received.", PEER_LABELS, registry=self.registry
        )
        self.requests = Counter(
            "istio_requests",
            "HBONE CONNECT requests.",
            (*PEER_LABELS, "response_code"),
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
