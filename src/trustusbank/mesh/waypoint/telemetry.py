"""The waypoint's evidence: one log line per request, agentgateway-style metrics.

Every line names both SPIFFE identities (the caller's, from its certificate,
and the backend's), the route, the MCP method and tool, and the decision with
the rule that made it: what an auditor asks of a gateway. A request that failed
(the backend hung up, or the waypoint itself erred) is logged with the decision
`error` and the error's text, never as a deny, and counted apart from denials.
A refused TLS handshake has no request, but it is a refusal too: it gets its own
line and counter, so every refusal at the waypoint leaves a trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from trustusbank.telemetry.jsonlog import JsonLinesLog


@dataclass
class RequestRecord:
    gateway: str
    src_identity: str | None
    src_addr: str
    http_method: str
    path: str
    route: str | None = None
    backend: str | None = None
    dst_identity: str | None = None
    mcp_method: str | None = None
    mcp_tool: str | None = None
    decision: str = "allow"
    rule: str | None = None
    reason: str | None = None
    status: int = 0
    duration_ms: float = 0.0
    trace_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {
            "src.identity": self.src_identity,
            "src.addr": self.src_addr,
            "http.method": self.http_method,
            "http.path": self.path,
            "route": self.route,
            "backend": self.backend,
            "dst.identity": self.dst_identity,
            "mcp.method": self.mcp_method,
            "mcp.tool": self.mcp_tool,
            "decision": self.decision,
            "rule": self.rule,
            "reason": self.reason,
            "http.status": self.status,
            "duration_ms": round(self.duration_ms, 2),
            "trace_id": self.trace_id,
            **self.extra,
        }


HANDSHAKE_SCOPE = "hbone"
HANDSHAKE_REASONS = (
    # (what `reason` contains, the metric's label): a bounded label set, first match wins.
    ("timed out", "timeout"),
    ("wrong_version_number", "not_tls"),
    ("http_request", "not_tls"),
    ("certificate", "certificate"),
    ("alpn", "alpn"),
    ("version", "tls_version"),
    ("protocol", "protocol"),
    ("errno", "connection"),
    ("reset", "connection"),
    ("eof", "connection"),
)


def handshake_reason(reason: str) -> str:
    """The metric label for a handshake failure: one of a few fixed words, whatever OpenSSL said."""
    text = reason.lower()
    return next((label for needle, label in HANDSHAKE_REASONS if needle in text), "other")


class WaypointLog:
    def __init__(self, path: Path, gateway: str) -> None:
        self._log = JsonLinesLog(path, gateway=gateway)

    def write(self, record: RequestRecord) -> None:
        level = "info" if record.decision == "allow" and record.status < 500 else "warn"
        self._log.write(level, "request", f"request {record.decision}", record.fields())

    def handshake_refused(self, peer: tuple[str, int] | None, reason: str) -> None:
        """A peer that did not complete mutual TLS: no identity, no request, still on the record."""
        fields = {
            "src.identity": None,
            "src.addr": f"{peer[0]}:{peer[1]}" if peer else None,
            "decision": "deny",
            "reason": f"tls handshake failed: {reason[:300]}",
            "error.type": handshake_reason(reason),
        }
        self._log.write("warn", HANDSHAKE_SCOPE, "tls handshake refused", fields)


class WaypointMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("gateway", "route", "backend", "method", "status")
        self.requests = Counter("agentgateway_requests", "HTTP requests.", labels, registry=self.registry)
        self.duration = Histogram(
            "agentgateway_request_duration_seconds",
            "Request duration, from the request to the end of the response.",
            ("gateway", "route"),
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.mcp = Counter(
            "agentgateway_mcp_requests",
            "MCP messages judged.",
            ("gateway", "route", "method", "tool", "decision", "source_principal"),
            registry=self.registry,
        )
        self.denied = Counter(
            "agentgateway_policy_denials",
            "Requests refused by policy, rate limit, a missing verified identity or a stalled body.",
            ("gateway", "route", "reason", "source_principal"),
            registry=self.registry,
        )
        # Failures are not refusals: a backend that hung up is counted here, never as a denial.
        self.errors = Counter(
            "trustusbank_waypoint_errors",
            "Requests that failed (502) after being allowed: the backend (upstream) or the waypoint.",
            ("gateway", "route", "backend", "where", "error_type"),
            registry=self.registry,
        )
        self.handshake_errors = Counter(
            "trustusbank_hbone_handshake_errors",
            "Refused mTLS handshakes (ztunnel's counter, at the waypoint).",
            ("gateway", "reason"),
            registry=self.registry,
        )
        # agentgateway's name and labels (plus the caller's identity, which the evidence needs);
        # the buckets are the OTel GenAI conventions' advice for gen_ai.client.token.usage.
        self.tokens = Histogram(
            "agentgateway_gen_ai_client_token_usage",
            "Number of tokens used per request.",
            (
                "gen_ai_token_type",
                "gen_ai_operation_name",
                "gen_ai_system",
                "gen_ai_request_model",
                "gen_ai_response_model",
                "gateway",
                "route",
                "source_principal",
            ),
            buckets=tuple(float(4**n) for n in range(14)),
            registry=self.registry,
        )
