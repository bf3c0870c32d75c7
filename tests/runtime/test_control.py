"""A supervisor that died without stopping its cluster, as `status` and the next `up` see it.

Real processes stand for the supervisor and its pods: one that has exited (the killed
supervisor, a pod that ended with it), one still running (a pod that did not), and
`trustusbank status` is run as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime import control

SLEEPER = "import time; time.sleep(60)"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process that outlived its supervisor (cmdline: not a supervisor's)."""
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER])
    yield proc
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def left_behind(files: ClusterFiles, supervisor: int, pods: list[int], started: float) -> None:
    """What a supervisor killed with SIGKILL leaves: its pid file and its last status."""
    files.make()
    files.pid.write_text(str(supervisor))
    status = {"phase": "Running", "pid": supervisor, "started_at": started, "nodes": [], "pods": []}
    status["pods"] = [{"namespace": "shop", "name": f"web-{n}", "pid": pid} for n, pid in enumerate(pods)]
    files.status.write_text(json.dumps(status))


def test_a_dead_supervisor_is_lost_and_says_when_and_what_ended(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path)
    supervisor, started = dead_pid(), time.time() - 60
    left_behind(files, supervisor, [dead_pid()], started)

    assert control.running_pid(files) is None
    lost = control.lost_supervisor(files)
    assert lost is not None
    assert (lost.pid, lost.started_at, lost.phase, lost.survivors) == (supervisor, started, "Running", [])
    assert lost.status_written_at == files.status.stat().st_mtime
    said = lost.describe()
    assert f"the supervisor (pid {supervisor}) of the cluster started at " in said
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)) in said
    assert "died without stopping it" in said
    assert "its pods and node proxies ended with it; `trustusbank up` starts it again" in said


def test_a_process_that_outlived_its_supervisor_is_named(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    files = ClusterFiles(tmp_path)
    left_behind(files, dead_pid(), [sleeper.pid, dead_pid()], time.time())
    lost = control.lost_supervisor(files)
    assert lost is not None
    assert lost.survivors == [sleeper.pid]
    assert f"1 of its processes still run, unmanaged (pids {sleeper.pid}): end them, then" in lost.describe()


def test_up_refuses_to_start_beside_what_outlived_the_last_supervisor(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    files = ClusterFiles(tmp_path / "state")
    left_behind(files, dead_pid(), [sleeper.pid], time.time())
    env = {
        **os.environ,
        "TRUSTUSBANK_STATE_DIR": str(files.state),
        "TRUSTUSBANK_DEPLOY_DIR": str(tmp_path / "nothing"),  # were it to start, it would fail fast
    }
    done = subprocess.run(
        [sys.executable, "-m", "trustusbank", "up"],  # refused before anything starts
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"still run, unmanaged (pids {sleeper.pid})" in " ".join(done.stderr.split())
    assert sleeper.poll() is None, "left for its owner to end"
    assert not files.events.exists(), "nothing started, nothing recorded"


def test_a_reused_pid_is_not_a_running_cluster(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """After a kill -9 the pid file stays; its pid may since be another program's."""
    files = ClusterFiles(tmp_path)
    left_behind(files, sleeper.pid, [], time.time())
    assert control.running_pid(files) is None
    lost = control.lost_supervisor(files)
    assert lost is not None
    assert lost.pid == sleeper.pid


def test_a_live_supervisor_is_running_not_lost(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path)
    # argv as `trustusbank up --supervise` has it, as far as the check reads it
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, "trustusbank", "up"])
    try:
        left_behind(files, proc.pid, [], time.time())
        assert control.running_pid(files) == proc.pid
        assert control.lost_supervisor(files) is None
        assert control.record_lost_supervisor(files) is None
        assert not files.events.exists()
    finally:
        proc.kill()
        proc.wait()


def test_the_next_up_records_the_loss_as_an_event(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path)
    supervisor, started = dead_pid(), time.time() - 5
    left_behind(files, supervisor, [], started)
    lost = control.record_lost_supervisor(files)
    assert lost is not None
    [event] = [json.loads(line) for line in files.events.read_text().splitlines()]
    assert event["event"] == "supervisor-lost"
    assert (event["pid"], event["started_at"], event["phase"]) == (supervisor, started, "Running")
    assert event["status_written_at"] == lost.status_written_at


def after_a_lost_supervisor(tmp_path: Path, command: str) -> tuple[int, int, str]:
    """`trustusbank <command>` on the state a killed supervisor left: (its pid, exit status, stderr)."""
    supervisor = dead_pid()
    left_behind(ClusterFiles(tmp_path), supervisor, [], time.time())
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "trustusbank", command], env=env, capture_output=True, text=True, check=False
    )
    return supervisor, done.returncode, " ".join(done.stderr.split())


def test_status_says_what_happened_and_exits_1(tmp_path: Path) -> None:
    supervisor, code, said = after_a_lost_supervisor(tmp_path, "status")
    assert code == 1
    assert f"the supervisor (pid {supervisor}) of the cluster started at" in said
    assert "`trustusbank up` starts it again" in said
    assert "no cluster is running" not in said


def test_down_has_nothing_to_stop_and_says_why(tmp_path: Path) -> None:
    supervisor, _, said = after_a_lost_supervisor(tmp_path, "down")
    assert "no cluster is running" in said
    assert f"the supervisor (pid {supervisor}) of the cluster started at" in said
    assert ClusterFiles(tmp_path).pid.exists(), "left for the next up to record"


def test_a_clean_stop_is_not_a_loss(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path)
    left_behind(files, dead_pid(), [], time.time())
    files.pid.unlink()  # what a supervisor that stopped does last
    assert control.lost_supervisor(files) is None
