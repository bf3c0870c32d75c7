"""The agent's Prometheus metrics: AccessPolicy decisions, requests and tool calls.

The AccessPolicy counters carry kagent's names, so the KagentAccessPolicyDeny alert
rule reads the same series from this runtime as from kagent's on a cluster.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from trustusbank.agents.a2a.sessions import CONVERSATION, TURN
from trustusbank.manifests.kagent.spec import AgentSpec


class AgentMetrics:
    def __init__(self, spec: AgentSpec, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._agent = (spec.name, spec.namespace)
        self._denied = Counter(
            "kagent_accesspolicy_denied",
            "A2A requests an AccessPolicy refused.",
            ("agent", "namespace", "source_principal", "policy", "reason"),
            registry=registry,
        )
        self._decisions = Counter(
            "kagent_accesspolicy_decisions",
            "AccessPolicy decisions on A2A requests.",
            ("agent", "namespace", "decision"),
            registry=registry,
        )
        self._requests = Counter(
            "trustusbank_agent_requests",
            "Agent runs, by how they ended (completed, stopped, failed).",
            ("agent", "namespace", "outcome"),
            registry=registry,
        )
        self._tool_calls = Counter(
            "trustusbank_agent_tool_calls",
            "Tool calls the model asked for, by server (RemoteMCPServer or agent) and tool.",
            ("agent", "namespace", "server", "tool", "is_error"),
            registry=registry,
        )
        self._tasks_dropped = Counter(
            "trustusbank_agent_tasks_dropped",
            "Finished A2A tasks forgotten to keep the task store bounded (oldest first).",
            ("agent", "namespace"),
            registry=registry,
        )
        self._session_drops = Counter(
            "trustusbank_agent_session_memory_dropped",
            "Conversation memory forgotten to keep it bounded: whole conversations (least recently "
            "used first) and turns (a conversation's oldest first).",
            ("agent", "namespace", "what"),
            registry=registry,
        )
        self._model_seconds = Histogram(
            "trustusbank_agent_model_call_duration_seconds",
            "Time the model took to answer one request.",
            ("agent", "namespace"),
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )

        # Every drop counter shows 0 from the start: "nothing dropped" is a figure, not a missing series.
        self._tasks_dropped.labels(*self._agent)
        for what in (CONVERSATION, TURN):
            self._session_drops.labels(*self._agent, what)

    def task_dropped(self) -> None:
        self._tasks_dropped.labels(*self._agent).inc()

    def session_dropped(self, what: str) -> None:
        self._session_drops.labels(*self._agent, what).inc()

    def access_decision(self, allowed: bool) -> None:
        self._decisions.labels(*self._agent, "allow" if allowed else "deny").inc()

    def access_denied(self, principal: str, policy: str, reason: str) -> None:
        self._denied.labels(*self._agent, principal, policy, reason).inc()

    def request(self, outcome: str) -> None:
        self._requests.labels(*self._agent, outcome).inc()

    def tool_call(self, server: str, tool: str, is_error: bool) -> None:
        self._tool_calls.labels(*self._agent, server, tool, str(is_error).lower()).inc()

    def model_call(self, seconds: float) -> None:
        self._model_seconds.labels(*self._agent).observe(seconds)
