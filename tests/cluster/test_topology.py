"""Planning the cluster from deploy/: placement, addresses, and name resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.discovery import Unresolvable, resolve
from trustusbank.cluster.layout import DEFENCE_DIR
from trustusbank.cluster.topology import Topology, plan
from trustusbank.manifests.bundle import load_bundle


@pytest.fixture(scope="module")
def topology() -> Topology:
    return plan(load_bundle(DEPLOY, exclude=[DEPLOY / DEFENCE_DIR]), subnet=42)


def test_pods_land_on_workers_only_and_stably(topology: Topology) -> None:
    assert {n.name for n in topology.nodes} == {
        "trustusbank-control-plane",
        "trustusbank-worker",
        "trustusbank-worker2",
    }
    assert {p.node for p in topology.pods} <= {"trustusbank-worker", "trustusbank-worker2"}
    again = plan(load_bundle(DEPLOY, exclude=[DEPLOY / DEFENCE_DIR]), subnet=42)
    assert [(p.name, p.node, p.ip) for p in again.pods] == [(p.name, p.node, p.ip) for p in topology.pods]


def test_every_pod_has_its_own_addresses_in_the_cluster_block(topology: Topology) -> None:
    addresses = [p.ip for p in topology.pods] + [p.app_ip for p in topology.pods]
    assert len(set(addresses)) == len(addresses)
    assert all(a.startswith("127.42.") for a in addresses)
    converter = topology.pod("trustusbank-bank-vendors/currency-converter-0")
    assert converter is not None
    assert converter.spiffe_uri("cluster.local") == (
        "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
    )


def test_save_and_load_round_trip(topology: Topology, tmp_path: Path) -> None:
    topology.save(tmp_path / "t.json")
    assert Topology.load(tmp_path / "t.json") == topology


@pytest.mark.parametrize(
    "host",
    [
        "fx-api.external-fx.svc.cluster.local",
        "fx-api.external-fx.svc",
        "fx-api.external-fx",
    ],
)
def test_service_names_resolve_through_the_mesh(topology: Topology, host: str) -> None:
    dest = resolve(topology, host, 8080, "trustusbank-bank-vendors")
    assert dest.captured
    assert dest.pod is not None
    assert dest.pod.deployment == "fx-api"
    assert dest.authority == f"{dest.pod.ip}:8080"


def test_short_names_use_the_clients_namespace(topology: Topology) -> None:
    dest = resolve(topology, "account-mcp", 8000, "trustusbank-bank-mcp")
    assert dest.pod is not None
    assert dest.pod.deployment == "account-mcp"
    with pytest.raises(Unresolvable):
        resolve(topology, "account-mcp", 8000, "trustusbank-bank-vendors")


def test_unknown_names_ports_and_addresses(topology: Topology) -> None:
    with pytest.raises(Unresolvable, match="no Service"):
        resolve(topology, "nope.external-fx.svc.cluster.local", 8080, "x")
    with pytest.raises(Unresolvable, match="no port 9999"):
        resolve(topology, "fx-api.external-fx.svc.cluster.local", 9999, "x")
    with pytest.raises(Unresolvable, match="no workload"):
        resolve(topology, "127.42.1.99", 80, "x")
    outside = resolve(topology, "192.0.2.7", 80, "x")
    assert not outside.captured
    assert outside.authority == "192.0.2.7:80"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.99.0.1", "localhost", "::1"])
def test_loopback_is_never_reached_through_the_capture(topology: Topology, host: str) -> None:
    """A pod's loopback is its own; through its capture it must not reach the node's."""
    with pytest.raises(Unresolvable, match="loopback"):
        resolve(topology, host, 18009, "x")


def test_admin_ports_of_node_proxies_are_reached_plain_and_nothing_else_of_a_node(
    topology: Topology,
) -> None:
    node = topology.nodes[0].ip
    admin = resolve(topology, node, 15020, "x")
    assert (admin.captured, admin.pod, admin.authority) == (False, None, f"{node}:15020")
    with pytest.raises(Unresolvable, match="no workload"):
        resolve(topology, node, 15001, "x")


def test_waypoint_binding_comes_from_the_namespace_label(topology: Topology) -> None:
    registry = resolve(topology, "agentregistry.trustusbank-platform", 8080, "x")
    assert registry.waypoint == "trustusbank-platform/trustusbank-agentgw"
    assert resolve(topology, "fx-api.external-fx", 8080, "x").waypoint is None
