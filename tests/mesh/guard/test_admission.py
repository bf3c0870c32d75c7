"""Who reaches the MCP guard under deploy/08-defence: the waypoint and the evaluator, nobody else.

A workload that could call the guard could pin a backend's tools before the waypoint did or
raise false drift, so ztunnel refuses it (deploy's own policies, ztunnel's own decision code).
"""

from __future__ import annotations

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.topology import Pod, plan
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.istio.objects import Connection, Workload
from trustusbank.manifests.kagent.controller import expand
from trustusbank.mesh.authz import AuthorizationPolicy, authorize
from trustusbank.mesh.identity.spiffe import SpiffeId

WAYPOINT = SpiffeId("cluster.local", "trustusbank-platform", "trustusbank-agentgw")
EVALUATOR = SpiffeId("cluster.local", "trustusbank-observability", "alert-evaluator")
AGENT = SpiffeId("cluster.local", "trustusbank-bank-agents", "support-bot")
VENDOR = SpiffeId("cluster.local", "trustusbank-bank-vendors", "currency-converter")


@pytest.fixture(scope="module")
def guard() -> tuple[Pod, list[AuthorizationPolicy]]:
    bundle = expand(load_bundle(DEPLOY))
    policies = [
        AuthorizationPolicy.from_manifest(m) for m in bundle.objects if m.kind == "AuthorizationPolicy"
    ]
    pod = next(p for p in plan(bundle, 77).pods if p.labels.get("app") == "mcp-guard")
    return pod, policies


@pytest.mark.parametrize(
    ("caller", "port", "allowed"),
    [
        (WAYPOINT, 8080, True),
        (EVALUATOR, 8080, True),
        (WAYPOINT, 9999, False),
        (AGENT, 8080, False),
        (VENDOR, 8080, False),
    ],
)
def test_only_the_waypoint_and_the_evaluator_reach_the_guard(
    guard: tuple[Pod, list[AuthorizationPolicy]], caller: SpiffeId, port: int, allowed: bool
) -> None:
    pod, policies = guard
    decision = authorize(
        Connection(caller, "10.0.0.1", pod.ip, port), Workload(pod.name, pod.namespace, pod.labels), policies
    )
    assert decision.allowed is allowed, decision


def test_without_the_defence_set_anyone_reaches_it(guard: tuple[Pod, list[AuthorizationPolicy]]) -> None:
    """What the bench's `none` level measures: the ALLOW is part of deploy/08-defence."""
    pod, policies = guard
    outside = [p for p in policies if p.name != "allow-guard-callers"]
    decision = authorize(
        Connection(AGENT, "10.0.0.1", pod.ip, 8080), Workload(pod.name, pod.namespace, pod.labels), outside
    )
    assert decision.allowed
