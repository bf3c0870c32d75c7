"""`up --detach` that cannot start says which pod failed and why, and leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.control import alive, read_status

pytestmark = [pytest.mark.slow, pytest.mark.own_cluster]

REGISTRY = "trustusbank-platform/agentregistry-0"


def test_a_pod_that_never_gets_ready_fails_up_with_its_log_tail(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy)
    # The registry and the MCP servers it catalogues are enough to show it. Every pod that starts
    # beside the registry delays its first crash, which must come before the 20s deadline; with
    # eight pods that took 8-16s on a 2-core machine with both cores busy, with these five 5-8s.
    for heavy in ("01-external", "06-agentgateway", "07-agents", "09-frontend", "10-observability"):
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
    assert f"pod {REGISTRY} did not become ready" in result.stderr
    assert "AGENTREGISTRY_CATALOGUE=/nowhere/catalogue.yaml: no such file" in result.stderr
    status = read_status(files)
    assert status is not None
    assert status["phase"] == "Failed"
    assert not files.pid.exists()
    # All of it is in the runtime log before `up --detach` returns: the supervisor publishes
    # Failed only once everything has stopped and every exit is recorded.
    events = [json.loads(line) for line in files.events.read_text().splitlines()]
    crashes = [e for e in events if e["event"] == "crashed" and e["process"] == REGISTRY]
    assert crashes, "the crash loop was recorded"
    assert crashes[0]["exit_code"] == 1
    started = [e for e in events if e["event"] == "started"]
    assert len({e["process"] for e in started}) == 9, "istiod, 3 node proxies and 5 pods were started"
    assert not [e["pid"] for e in started if alive(e["pid"])], "a failed start stops what it started"
