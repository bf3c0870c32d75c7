"""What the evaluator scrapes in the shipped topology, and whether the mesh lets each scrape in.

The targets come from the topology `up` plans from deploy/ (agents expanded by kagent's
controller); each scrape of a captured pod arrives at that pod's node proxy over HBONE as the
evaluator's SPIFFE identity, so deploy/'s AuthorizationPolicies, decided by ztunnel's own
evaluation, must admit it on the scraped port.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.paths import DEPLOY
from trustusbank.alerts.targets import Target, targets_from_topology
from trustusbank.cluster.topology import Topology, plan
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.istio.objects import Connection, Workload
from trustusbank.manifests.kagent.controller import expand
from trustusbank.mesh.authz import AuthorizationPolicy, authorize
from trustusbank.mesh.identity.spiffe import SpiffeId

EVALUATOR = SpiffeId("cluster.local", "trustusbank-observability", "alert-evaluator")
OUTSIDER = SpiffeId("cluster.local", "trustusbank-bank-vendors", "currency-converter")


@pytest.fixture(scope="module")
def shipped() -> tuple[Topology, list[AuthorizationPolicy]]:
    bundle = expand(load_bundle(DEPLOY))  # the agents' pods, as kagent's controller makes them
    policies = [
        AuthorizationPolicy.from_manifest(m) for m in bundle.objects if m.kind == "AuthorizationPolicy"
    ]
    return plan(bundle, 77), policies


def test_the_mcp_guard_is_scraped_on_its_port_beside_the_agents_and_proxies(
    shipped: tuple[Topology, list[AuthorizationPolicy]],
) -> None:
    topology, _ = shipped
    targets = targets_from_topology(topology)
    assert {t.job for t in targets} == {"ztunnel", "waypoint", "agent", "mcp-guard"}
    [guard] = [p for p in topology.pods if p.labels.get("app") == "mcp-guard"]
    assert [t for t in targets if t.job == "mcp-guard"] == [
        Target("mcp-guard", f"http://{guard.ip}:8080/metrics")
    ]
    assert guard.namespace == "trustusbank-platform"
    agents = [p for p in topology.pods if p.labels.get("app") == "kagent"]
    assert len([t for t in targets if t.job == "agent"]) == len(agents) > 0


def test_the_mesh_admits_the_evaluator_to_every_captured_target_and_only_on_its_port(
    shipped: tuple[Topology, list[AuthorizationPolicy]],
) -> None:
    """Under deploy/08-defence's default-deny: the agents' namespace admits the scrape by
    allow-metrics-scrape; trustusbank-platform, the guard's, has no ALLOW policy to pass."""
    topology, policies = shipped
    captured = []
    for target in targets_from_topology(topology):
        url = urlsplit(target.url)
        pod = topology.pod_by_ip(url.hostname or "")
        if pod is None or pod.role != "workload":
            continue  # node proxies and waypoints: their admin port is not captured
        captured.append(target.job)
        workload = Workload(pod.name, pod.namespace, pod.labels)
        scrape = authorize(Connection(EVALUATOR, "10.0.0.1", pod.ip, url.port or 80), workload, policies)
        assert scrape.allowed, f"{target.job} {target.url}: {scrape}"
        if pod.namespace == "trustusbank-bank-agents":  # default-deny there: the ALLOW is the port's only
            other_port = authorize(Connection(EVALUATOR, "10.0.0.1", pod.ip, 9999), workload, policies)
            assert not other_port.allowed
            outsider = authorize(Connection(OUTSIDER, "10.0.0.1", pod.ip, url.port or 80), workload, policies)
            assert not outsider.allowed
    assert sorted(set(captured)) == ["agent", "mcp-guard"]
