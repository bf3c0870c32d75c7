"""`up --detach` that cannot start says which pod failed and why, and leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.control import alive, read_status


def test_a_pod_that_never_gets_ready_fails_up_with_its_log_tail(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy)
    # The bank's workloads are enough to show it; fewer pods keep a loaded 2-core machine in time.
    for heavy in ("07-agents", "09-frontend", "10-observability"):
        shutil.rmtree(deploy / heavy)
    registry = deploy / "04-registry" / "agentregistry.yaml"
    registry.write_text(
        registry.read_text().replace("/etc/agentregistry/catalogue.yaml", "/nowhere/catalogue.yaml")
    )
    files = ClusterFiles(tmp_path / "state")
    env = {
        **os.environ,
        "TRUSTUSBANK_STATE_DIR": str(files.state),
        "TRUSTUSBANK_DEPLOY_DIR": str(deploy),
        "TRUSTUSBANK_PORT_FORWARDS": "0",
        "TRUSTUSBANK_READY_TIMEOUT": "20",
    }
    result = subprocess.run(
        [sys.executable, "-m", "trustusbank", "up", "--detach"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "pod trustusbank-platform/agentregistry-0 did not become ready" in result.stderr
    assert "AGENTREGISTRY_CATALOGUE=/nowhere/catalogue.yaml: no such file" in result.stderr
    status = read_status(files)
    assert status is not None
    assert status["phase"] == "Failed"
    assert not files.pid.exists()
    assert "crashed" in files.events.read_text(), "the crash loop was recorded"
    events = [json.loads(line) for line in files.events.read_text().splitlines()]
    started = [e["pid"] for e in events if e["event"] == "started"]
    assert len(started) >= 10, "3 node proxies and 7 pods were started"
    assert not [pid for pid in started if alive(pid)], "a failed start stops what it started"
