"""`up --detach`, `status`, crash recovery and `down`, as a user runs them."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

from tests.system.conftest import Cluster


def test_status_shows_every_pod_with_its_identity(cluster: Cluster) -> None:
    result = cluster.cli("status")
    assert result.returncode == 0, result.stderr
    status = cluster.status()
    assert status["phase"] == "Running"
    pods = {f"{p['namespace']}/{p['name']}": p for p in status["pods"]}
    assert len(pods) == 16, (
        "7 workloads, the scripted model, 3 agents, the chatbot, the SOC inbox, the alert evaluator, "
        "the waypoint, its MCP guard"
    )
    assert pods["trustusbank-platform/trustusbank-agentgw-0"]["identity"] == (
        "spiffe://cluster.local/ns/trustusbank-platform/sa/trustusbank-agentgw"
    )
    assert all(p["ready"] for p in pods.values())
    converter = pods["trustusbank-bank-vendors/currency-converter-0"]
    assert converter["identity"] == "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
    assert converter["node"] in {"trustusbank-worker", "trustusbank-worker2"}
    assert "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter" in result.stdout
    assert all(n["ready"] for n in status["nodes"])


def test_second_up_on_the_same_state_is_refused(cluster: Cluster) -> None:
    again = cluster.cli("up", "--detach")
    assert again.returncode == 1
    assert "already running" in again.stderr


def test_a_killed_pod_comes_back_and_the_restart_is_logged(cluster: Cluster) -> None:
    def fx_api() -> dict:
        return next(p for p in cluster.status()["pods"] if p["name"] == "fx-api-0")

    before = fx_api()
    os.kill(before["pid"], signal.SIGKILL)
    after = cluster.wait_for(
        lambda: (p := fx_api())["restarts"] == before["restarts"] + 1 and p["ready"] and p,
        timeout=30,
        what="fx-api to restart",
    )
    assert after["pid"] != before["pid"]
    events = cluster.files.events.read_text()
    assert '"event": "crashed"' in events
    assert '"process": "external-fx/fx-api-0"' in events


def test_private_keys_stay_in_the_node_proxy(cluster: Cluster) -> None:
    for pod in cluster.status()["pods"]:
        environ = Path(f"/proc/{pod['pid']}/environ").read_bytes()
        assert b"PRIVATE KEY" not in environ
        assert b"/nodes/" not in environ, "no path to a node's credentials"
    for node in cluster.topology.nodes:
        certs = cluster.files.node_dir(node.name) / "certs"
        assert stat.S_IMODE(certs.stat().st_mode) == 0o700
        for pem in certs.glob("*.pem"):
            assert stat.S_IMODE(pem.stat().st_mode) == 0o600


def test_svids_rotate_before_expiry_and_traffic_keeps_flowing(cluster: Cluster) -> None:
    """SVIDs live 8 s in this module; each node proxy re-issues at half-life."""
    cluster.wait_for(
        lambda: (
            "rotated the certificate of"
            in (cluster.files.logs / "ztunnel-trustusbank-worker.log").read_text()
        ),
        timeout=15,
        what="a certificate rotation",
    )
    code = "import httpx; print(httpx.get('http://fx-api.external-fx:8080/latest?from=GBP&to=EUR').json()['rates'])"
    result = cluster.exec_python("trustusbank-bank-vendors/currency-converter", code)
    assert result.stdout.strip() == "{'EUR': 1.18}", result.stderr
