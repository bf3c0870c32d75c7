"""One embedded cluster for the test session: `trustusbank up --detach` in a private state directory.

Shared by tests/system and tests/browser, and registered once, in tests/conftest.py: a fixture
defined in two conftests is two fixtures, and would start two clusters in one session. Both
directories are one xdist group (tests/conftest.py), so one worker starts it, once.
Tests that change it (policies, killed pods, the rug pull) put it back as they found it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Topology


@dataclass
class Cluster:
    files: ClusterFiles
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trustusbank", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def exec_python(self, pod: str, code: str) -> subprocess.CompletedProcess[str]:
        return self.cli("exec", pod, "--", sys.executable, "-c", code)

    @property
    def topology(self) -> Topology:
        return Topology.load(self.files.topology)

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.files.status.read_text()))

    def access_log(self) -> list[dict[str, Any]]:
        records = []
        for path in sorted(self.files.logs.glob("ztunnel-*.jsonl")):
            records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return records

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("cluster-state")
    env = {
        **os.environ,
        "TRUSTUSBANK_STATE_DIR": str(state),
        "TRUSTUSBANK_PORT_FORWARDS": "0",
        # Short-lived SVIDs, so that rotation happens while the module's tests run.
        "TRUSTUSBANK_SVID_TTL_SECONDS": "8",
        "TRUSTUSBANK_DEPLOY_DIR": str(DEPLOY),
    }
    cluster = Cluster(ClusterFiles(state), env)
    cluster.files.make()
    started = cluster.cli("up", "--detach", timeout=300)
    if started.returncode != 0:
        supervisor_log = cluster.files.logs / "supervisor.log"
        tail = supervisor_log.read_text()[-3000:] if supervisor_log.exists() else ""
        pytest.fail(f"up --detach failed:\n{started.stderr}\n{tail}")
    yield cluster
    cluster.cli("down", timeout=120)


def policy_reloads(cluster: Cluster) -> list[int]:
    logs = [cluster.files.ztunnel_log(n.name) for n in cluster.topology.nodes]
    return [log.read_text().count("policies loaded") for log in logs]


def set_defence(cluster: Cluster, on: bool) -> None:
    """`policies on|off`, which returns once every ztunnel enforces the change; checked in their logs."""
    wanted = f"defence {'on' if on else 'off'}"
    was = cluster.cli("policies", "status").stdout.splitlines()[0]
    before = policy_reloads(cluster)
    done = cluster.cli("policies", "on" if on else "off")
    assert done.returncode == 0, done.stderr
    if was != wanted:
        assert "in force at every node proxy" in done.stderr
        if on:
            assert "applied deny-bank-to-attacker.yaml" in done.stderr
        assert all(now > then for now, then in zip(policy_reloads(cluster), before, strict=True))
    assert cluster.cli("policies", "status").stdout.splitlines()[0] == wanted


@pytest.fixture
def defence_on(cluster: Cluster) -> Iterator[None]:
    """`policies on`: the defence set applied next to deploy/, picked up live by every ztunnel."""
    set_defence(cluster, on=True)
    yield
    set_defence(cluster, on=False)
