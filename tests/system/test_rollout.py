"""The rug pull and the reset on a running cluster: same tag, new bytes, the pod restarted onto them.

The control channel is tested first on its own (a fake supervisor, real processes, a real
Unix socket); then the acts against the session cluster, which is put back (reset) after.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system.conftest import Cluster
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.processes import ManagedProcess
from trustusbank.runtime.rollout import ControlServer, RolloutError, rollout_restart
from trustusbank.scenario.changes import ActError, reset

# -- the control channel ------------------------------------------------------------------------


class FakeSupervisor:
    """Starts a real process per rollout; it is ready once it has written its marker file."""

    def __init__(self, workdir: Path, script: str) -> None:
        self.workdir = workdir
        self.script = script
        self.events: list[tuple[str, dict[str, object]]] = []
        self.procs: list[ManagedProcess] = []
        self.fresh_data: list[bool] = []

    def deployment_pods(self, namespace: str, name: str) -> list[str]:
        return ["shop/web-0"] if (namespace, name) == ("shop", "web") else []

    async def replace_pod(self, ref: str, *, fresh_data: bool = False) -> tuple[int | None, ManagedProcess]:
        self.fresh_data.append(fresh_data)
        marker = self.workdir / f"ready-{len(self.procs)}"

        async def probe() -> bool:
            return marker.exists()

        proc = ManagedProcess(
            name=ref,
            command=[sys.executable, "-c", self.script, str(marker)],
            env=dict(os.environ),
            log_file=self.workdir / "web.log",
            probe=probe,
            events=lambda kind, fields: None,
        )
        self.procs.append(proc)
        await proc.start()
        return 4242, proc

    def event(self, kind: str, fields: dict[str, object]) -> None:
        self.events.append((kind, fields))


READY = "import sys, time; open(sys.argv[1], 'w').close(); time.sleep(60)"
BROKEN = "print('boom: cannot load the image'); raise SystemExit(3)"


@pytest.fixture
def files() -> Iterator[ClusterFiles]:
    with tempfile.TemporaryDirectory(prefix="tub-") as short:  # Unix socket paths must stay short
        files = ClusterFiles(Path(short))
        files.make()
        yield files


@contextlib.asynccontextmanager
async def supervisor(files: ClusterFiles, script: str, ready: float = 10) -> AsyncIterator[FakeSupervisor]:
    host = FakeSupervisor(files.root, script)
    server = await ControlServer(host, ready_timeout=ready).serve(files.control_socket)
    try:
        yield host
    finally:
        server.close()
        for proc in host.procs:
            await proc.stop()


async def test_a_restart_streams_progress_and_returns_once_ready(files: ClusterFiles) -> None:
    async with supervisor(files, READY) as host:
        seen: list[str] = []
        done = await rollout_restart(
            files, "shop/web", actor="alice", command="trustusbank x", progress=seen.append, timeout=30
        )
        assert [(r.deployment, r.pod, r.old_pid) for r in done] == [("shop/web", "shop/web-0", 4242)]
        assert done[0].new_pid == host.procs[0].pid
        assert seen[0] == "restarting shop/web-0"
        assert seen[-1].startswith("shop/web-0 ready")
        kind, fields = host.events[-1]
        assert kind == "rollout-restarted"
        assert (fields["actor"], fields["command"], fields["old_pid"]) == ("alice", "trustusbank x", 4242)
        await rollout_restart(
            files, "shop/web", actor="a", command="c", progress=lambda _: None, timeout=30, fresh_data=True
        )
        assert host.fresh_data == [False, True], "a restart keeps the pod's data unless asked not to"


async def test_a_pod_that_does_not_come_up_fails_the_rollout_with_its_log(files: ClusterFiles) -> None:
    async with supervisor(files, BROKEN, ready=1) as host:
        with pytest.raises(RolloutError, match="did not become ready") as failed:
            await rollout_restart(
                files, "shop/web", actor="a", command="c", progress=lambda _: None, timeout=30
            )
        assert "boom: cannot load the image" in failed.value.log_tail
        assert host.events[-1][0] == "rollout-failed"
        with pytest.raises(RolloutError, match="no pods of Deployment shop/nope"):
            await rollout_restart(
                files, "shop/nope", actor="a", command="c", progress=lambda _: None, timeout=30
            )


async def test_no_supervisor_is_a_clear_error(files: ClusterFiles) -> None:
    with pytest.raises(RolloutError, match="takes no control requests"):
        await rollout_restart(files, "shop/web", actor="a", command="c", progress=lambda _: None, timeout=5)


# -- the acts on the session cluster -------------------------------------------------------------

SUPPORT_POD = "trustusbank-bank-agents/support-bot"
CONVERTER_TAG = "localhost:5001/acme-fx/currency-converter:1.0.0"
CONVERTER_POD = ("trustusbank-bank-vendors", "currency-converter-0")
PROBE = textwrap.dedent(
    """
    import asyncio, json
    from mcp import Client

    async def main():
        url = "http://trustusbank-agentgw.trustusbank-platform.svc.cluster.local:8080/mcp/currency"
        async with Client(url) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            result = await client.call_tool(
                "convert_currency", {"amount": 100, "from_ccy": "GBP", "to_ccy": "USD"}
            )
            schema = tools["convert_currency"].input_schema
            text = " ".join(getattr(c, "text", "") for c in result.content)
            print(json.dumps({"arguments": sorted(schema["properties"]), "text": text}))

    asyncio.run(main())
    """
)


def converter_as_support_bot(cluster: Cluster) -> dict[str, Any]:
    """What support-bot sees of the converter, through the waypoint, with its own identity."""
    result = cluster.exec_python(SUPPORT_POD, PROBE)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def converter_status(cluster: Cluster) -> dict[str, Any]:
    return next(p for p in cluster.status()["pods"] if (p["namespace"], p["name"]) == CONVERTER_POD)


def registry_entry(cluster: Cluster) -> dict[str, Any]:
    pod = next(p for p in cluster.topology.pods if p.deployment == "agentregistry")
    url = f"http://{pod.app_ip}:8080/api/servers/acme-fx/currency-converter"
    return dict(httpx.get(url, trust_env=False, timeout=10).raise_for_status().json())


@pytest.mark.slow
def test_the_rug_pull_swaps_the_bytes_behind_the_tag_and_reset_puts_them_back(cluster: Cluster) -> None:
    before = registry_entry(cluster)
    restored = False
    try:
        upgraded = cluster.cli("upgrade-banking-app", "--json")
        assert upgraded.returncode == 0, upgraded.stderr
        swap = json.loads(upgraded.stdout)
        assert swap["tag"] == CONVERTER_TAG
        assert swap["old_digest"] == before["pinned"]["digest"]
        assert swap["new_digest"] != swap["old_digest"]
        assert (swap["variant"], swap["signature"], swap["signer"]) == (
            "real-rugpull",
            "untrusted",
            "acme-fx red team",
        )
        assert [r["pod"] for r in swap["restarted"]] == ["/".join(CONVERTER_POD)]

        seen = converter_as_support_bot(cluster)  # the pod now runs the real-rugpull build
        assert "customer_profile" in seen["arguments"]
        assert "<system>" in seen["text"]
        status = converter_status(cluster)
        assert status["image"] == CONVERTER_TAG  # the Deployment never changed
        assert status["image_id"] == swap["new_digest"]
        assert status["ready"]

        entry = registry_entry(cluster)
        assert entry["running"]["digest"] == swap["new_digest"] != entry["pinned"]["digest"]
        assert entry["matches_pin"] is False
        assert entry["signature"]["status"] == "untrusted"
        registered = ("publisher", "version", "image", "spiffe_id", "pinned")
        assert {k: entry[k] for k in registered} == {k: before[k] for k in registered}

        pushed = [
            json.loads(line)
            for line in cluster.files.events.read_text().splitlines()
            if '"image-pushed"' in line or '"rollout-restarted"' in line
        ][-2:]
        assert [e["event"] for e in pushed] == ["image-pushed", "rollout-restarted"]
        assert pushed[0]["new_digest"] == swap["new_digest"]
        assert pushed[0]["signer"] == "acme-fx red team"
        assert pushed[1]["command"] == "trustusbank upgrade-banking-app --json"
        assert pushed[1]["actor"]

        first = cluster.cli("reset", "--json")
        assert first.returncode == 0, first.stderr
        report = json.loads(first.stdout)
        assert report["converter"]["new_digest"] == before["pinned"]["digest"]
        assert report["converter"]["signature"] == "org"
        assert report["steps"][0] == {
            "name": "converter",
            "changed": True,
            "detail": report["steps"][0]["detail"],
        }
        seen = converter_as_support_bot(cluster)
        assert "customer_profile" not in seen["arguments"]
        assert "<system>" not in seen["text"]
        entry = registry_entry(cluster)
        assert (entry["matches_pin"], entry["signature"]["status"]) == (True, "org")

        second = cluster.cli("reset")
        assert second.returncode == 0, second.stderr
        assert "already at the baseline" in second.stdout
        assert second.stdout.count("unchanged") == 4  # converter, defence policies, bank data, attacker view
        assert converter_status(cluster)["pid"] == first_pid(report)
        restored = True
    finally:
        if not restored:  # put the cluster back for the tests after this one
            cluster.cli("reset")


def first_pid(report: dict[str, Any]) -> int:
    return int(report["converter"]["restarted"][-1]["new_pid"])


async def test_the_acts_need_a_running_cluster(tmp_path: Path) -> None:
    result = Cluster(ClusterFiles(tmp_path), {**os.environ, "TRUSTUSBANK_STATE_DIR": str(tmp_path)}).cli(
        "upgrade-banking-app"
    )
    assert result.returncode == 1
    assert "no cluster is running" in result.stderr
    with pytest.raises(ActError, match="no cluster is running"):
        await reset(ClusterFiles(tmp_path))
