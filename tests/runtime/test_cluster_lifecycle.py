"""`up --detach`, `status`, crash recovery and `down`, as a user runs them."""

from __future__ import annotations

import os
import signal

from tests.runtime.conftest import Cluster


def test_status_shows_every_pod_with_its_identity(cluster: Cluster) -> None:
    result = cluster.cli("status")
    assert result.returncode == 0, result.stderr
    status = cluster.status()
    assert status["phase"] == "Running"
    pods = {f"{p['namespace']}/{p['name']}": p for p in status["pods"]}
    assert len(pods) == 7
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
