"""Two clusters from two state directories run side by side; `down` stops one cleanly.

The second one runs in the cooperative mode (`TRUSTUSBANK_ISOLATION=cooperative`), the
fallback where namespaces are not available: it must work, and say it is no boundary.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.system.conftest import Cluster
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.control import alive

pytestmark = [pytest.mark.slow, pytest.mark.own_cluster]


def test_a_second_state_gets_its_own_cluster_and_down_stops_it(cluster: Cluster, tmp_path: Path) -> None:
    other = ClusterFiles(tmp_path / "other-state")
    env = {**cluster.env, "TRUSTUSBANK_STATE_DIR": str(other.state), "TRUSTUSBANK_ISOLATION": "cooperative"}
    console = (tmp_path / "up.out").open("w")
    foreground = subprocess.Popen(
        [sys.executable, "-m", "trustusbank", "up"], env=env, stdout=console, stderr=console
    )
    second = Cluster(other, env)
    try:
        status = second.wait_for(
            lambda: (
                other.status.exists()
                and (s := json.loads(other.status.read_text()))["phase"] == "Running"
                and s
            ),
            timeout=120,
            what="the second cluster to run",
        )
        assert status["subnet"] != cluster.status()["subnet"]
        assert status["isolation"]["mode"] == "cooperative"
        assert "NOT a security boundary" in second.cli("status").stdout
        assert all(p["namespaces"] == "host (shared)" for p in status["pods"])
        code = "import httpx; print(httpx.get('http://fx-api.external-fx:8080/latest?from=GBP&to=JPY').status_code)"
        assert second.exec_python("trustusbank-bank-vendors/currency-converter", code).stdout.strip() == "200"
        pids = [p["pid"] for p in status["pods"]] + [n["ztunnel_pid"] for n in status["nodes"]]

        stopped = second.cli("down")
        assert stopped.returncode == 0
        assert "cluster stopped" in stopped.stderr
        assert foreground.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if alive(pid)], "every pod and node proxy is gone"
        assert second.cli("status").returncode == 1
        assert cluster.status()["phase"] == "Running", "the first cluster is untouched"
    finally:
        if foreground.poll() is None:
            foreground.kill()
            foreground.wait()
        console.close()
