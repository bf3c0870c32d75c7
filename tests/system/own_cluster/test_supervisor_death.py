"""kill -9 of the supervisor during Act 3, on a cluster of its own: nothing of the cluster keeps
serving, `status` says what happened, and the next `up` records the loss before anything else;
then the same prompt gets the same reply and the evidence chain has no gap."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest

from tests.paths import DEPLOY
from tests.session_cluster import Cluster
from tests.system.act3 import Before, act_three, events, nothing_lost
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.mesh.identity.istiod import answers
from trustusbank.runtime.control import listed_pids, running


def refuses(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return False
    except OSError:
        return True


@pytest.mark.own_cluster
@pytest.mark.slow
def test_killed_supervisor_takes_its_cluster_with_it_and_up_records_the_loss(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    state = tmp_path_factory.mktemp("faults-supervisor")
    env = {
        **os.environ,
        "TRUSTUSBANK_STATE_DIR": str(state),
        "TRUSTUSBANK_PORT_FORWARDS": "0",
        "TRUSTUSBANK_DEPLOY_DIR": str(DEPLOY),
    }
    own = Cluster(ClusterFiles(state), env)
    try:
        assert own.cli("up", "--detach", timeout=300).returncode == 0
        reply = act_three(own.files)
        before = Before.take(own.files)
        status = own.status()
        pids = listed_pids(status)
        addresses = [(p["ip"], port) for p in status["pods"] for port in p["ports"]]
        addresses += [(n["ip"], 15020) for n in status["nodes"]]
        serving = [a for a in addresses if not refuses(a)]
        assert len(serving) > len(status["pods"]), "every pod's ports and every node's metrics"
        assert len(pids) > len(status["pods"]), "pods, node proxies, istiod, console, zygote"

        os.kill(status["pid"], signal.SIGKILL)
        own.wait_for(lambda: not any(running(pid) for pid in pids), timeout=30, what="nothing left running")
        assert [a for a in serving if not refuses(a)] == [], "nothing of the cluster serves"
        assert not asyncio.run(answers(own.files.istiod_socket)), "nor istiod, whose socket file stays"
        said = own.cli("status")
        assert said.returncode == 1
        told = " ".join(said.stderr.split())
        assert f"the supervisor (pid {status['pid']}) of the cluster started at" in told, told
        assert "its pods and node proxies ended with it" in told

        again = own.cli("up", "--detach", timeout=300)
        assert again.returncode == 0, again.stderr
        [lost] = events(own.files, "supervisor-lost")
        assert (lost["pid"], lost["started_at"]) == (status["pid"], status["started_at"])
        assert lost["survivors"] == []
        after = [e["event"] for e in events(own.files, "") if e["time"] >= lost["time"]]
        assert after[0] == "supervisor-lost", "recorded before the new cluster's first event"
        nothing_lost(own, before, reply, "supervisor-lost", str(status["pid"]))
    finally:
        own.cli("down", timeout=120)
