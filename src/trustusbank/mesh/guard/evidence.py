"""What the guard leaves for the auditor and the SOC: JSON log lines and Prometheus counters.

Every mask, reject and drift is one JSON line (the project's `JsonLinesLog`) naming the
rule, the action, the backend, the caller's SPIFFE identity, the tool, the reason and the
sha256 of the offending text, so a log query answers "who was stopped from what, and by
which rule". Counters carry the same labels minus the caller, so they stay bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from trustusbank.mesh.guard.wire import Decision, Exchange
from trustusbank.telemetry.jsonlog import JsonLinesLog

SCOPE = "mcp-guard"
LOG_NAME = "mcp-guard.jsonl"


class GuardMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "trustusbank_mcp_guard_decisions",
            "Messages judged by the MCP guard, by the rule that decided and its action.",
            ("rule", "action", "backend"),
            registry=self.registry,
        )
        self.drift = Counter(
            "trustusbank_mcp_guard_drift",
            "Tool definitions that changed since they were pinned (or tools never pinned).",
            ("backend", "tool"),
            registry=self.registry,
        )
        self.dropped = Counter(
            "trustusbank_mcp_guard_taint_dropped",
            "Data-flow memory dropped to stay bounded (evicted parties or values, expired values).",
            ("reason",),
            registry=self.registry,
        )


class GuardEvidence:
    def __init__(self, log_path: Path, metrics: GuardMetrics) -> None:
        self._log = JsonLinesLog(log_path, component=SCOPE)
        self.metrics = metrics

    def decided(self, exchange: Exchange, decision: Decision) -> None:
        rule = decision.rule or "none"
        self.metrics.decisions.labels(rule, decision.action, exchange.backend).inc()

    def record(
        self,
        exchange: Exchange,
        *,
        rule: str,
        action: str,
        tool: str | None,
        reason: str,
        sha256: str | None,
        **extra: Any,
    ) -> None:
        """One evidence line: a mask, a reject or a drift."""
        fields = {
            "rule": rule,
            "action": action,
            "backend": exchange.backend,
            "caller": exchange.caller,
            "session": exchange.session,
            "tool": tool,
            "reason": reason,
            "sha256": sha256,
            **extra,
        }
        self._log.write("warn", SCOPE, f"mcp guard {action}", fields)

    def drifted(self, backend: str, tool: str) -> None:
        self.metrics.drift.labels(backend, tool).inc()
