"""A pod's sandbox, started by podinit without a cluster: what the process inside can see and do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import pytest

import trustusbank.runtime.sandbox as sandbox_module
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Pod, PodPort
from trustusbank.kernel.netns import NetworkNamespace
from trustusbank.runtime.sandbox import PodSandbox, SandboxError, image_paths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a pod sandbox needs root here")

PROBE = """
import json, os, socket
out = {"pid": os.getpid(), "uid": os.getuid(), "host": socket.gethostname(), "cwd": os.getcwd()}
out["procs"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
out["secret"] = os.path.exists(os.environ["SECRET"])
out["shared"] = open(os.environ["SHARED"]).read()
with open("mine.txt", "w") as f:
    f.write("mine")
try:
    open(os.environ["SHARED"], "w")
    out["shared_writable"] = True
except OSError:
    out["shared_writable"] = False
print(json.dumps(out))
"""


def _pod() -> Pod:
    return Pod(
        name="probe-0",
        namespace="test",
        deployment="probe",
        service_account="probe",
        labels={},
        node="n",
        ip="127.200.1.10",
        app_ip="127.200.1.138",
        ports=[PodPort("http", 8080)],
        image="x",
    )


def _state(tmp_path: Path) -> tuple[ClusterFiles, Path]:
    """A cluster state with one pod's directory, as the supervisor lays it out."""
    files = ClusterFiles(tmp_path / "state")
    files.make()
    pod_dir = files.pod_dir("test", "probe-0")
    pod_dir.mkdir(parents=True)
    return files, pod_dir


def test_the_pod_sees_its_own_dir_and_what_it_is_shown_and_nothing_else(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path / "state")
    files.make()
    secret = files.ca / "root-key.pem"
    secret.parent.mkdir()
    secret.write_text("the CA's key")
    shared = files.topology
    shared.write_text("topology")
    pod_dir = files.pod_dir("test", "probe-0")
    pod_dir.mkdir(parents=True)
    sandbox = PodSandbox(_pod(), NetworkNamespace.create(), uid=201_234)
    try:
        argv, fds = sandbox.command([sys.executable, "-c", PROBE], files, pod_dir, [shared])
        env = {**os.environ, "SECRET": str(secret), "SHARED": str(shared)}
        done = subprocess.run(argv, env=env, pass_fds=fds, capture_output=True, text=True, timeout=60)
    finally:
        sandbox.close()
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["pid"], seen["uid"], seen["host"]) == (1, 201_234, "probe-0")
    assert seen["procs"] == [1]
    assert seen["secret"] is False
    assert seen["shared"] == "topology"
    assert seen["shared_writable"] is False
    assert (pod_dir / "mine.txt").read_text() == "mine"
    assert (pod_dir / "mine.txt").stat().st_uid == 201_234


def test_a_failing_command_reports_its_exit_code(tmp_path: Path) -> None:
    files, pod_dir = _state(tmp_path)
    sandbox = PodSandbox(_pod(), NetworkNamespace.create(), uid=None)
    try:
        argv, fds = sandbox.command([sys.executable, "-c", "raise SystemExit(7)"], files, pod_dir, [])
        done = subprocess.run(argv, pass_fds=fds, capture_output=True, timeout=60)
    finally:
        sandbox.close()
    assert done.returncode == 7


def test_a_state_dir_inside_what_pods_are_shown_is_refused(tmp_path: Path) -> None:
    shown = tmp_path / "deploy"
    files = ClusterFiles(shown / "state")
    files.make()
    sandbox = PodSandbox(_pod(), NetworkNamespace.create(), uid=None)
    try:
        with pytest.raises(SandboxError, match="would see the cluster state"):
            sandbox.rootfs(files, files.pod_dir("test", "probe-0"), [shown])
    finally:
        sandbox.close()


def test_the_image_is_the_python_installation_not_the_working_directory() -> None:
    paths = image_paths()
    assert os.getcwd() not in paths
    assert any(Path(sys.base_prefix).resolve().is_relative_to(p) for p in map(Path, paths))


def test_a_killed_supervisor_leaves_no_pod_behind(tmp_path: Path) -> None:
    """SIGKILL of the parent (the supervisor) takes podinit with it, and podinit takes the pod's PID 1."""
    files, pod_dir = _state(tmp_path)
    sandbox = PodSandbox(_pod(), NetworkNamespace.create(), uid=None)
    try:
        argv, fds = sandbox.command([sys.executable, "-c", "import time; time.sleep(60)"], files, pod_dir, [])
        # A stand-in supervisor: it starts podinit (as its parent, which the spec names), waits for the
        # pod's app to run, says both pids, and is then SIGKILLed.
        supervisor = """
import json, os, subprocess, sys, time
argv = json.loads(sys.argv[1])
spec = json.loads(argv[-1])
spec["parent"] = os.getpid()
pod = subprocess.Popen([*argv[:-1], json.dumps(spec)], pass_fds=json.loads(sys.argv[2]))
def app():
    for child in open(f"/proc/{pod.pid}/task/{pod.pid}/children").read().split():
        try:
            if b"sleep" in open(f"/proc/{child}/cmdline", "rb").read():
                return child
        except OSError:
            pass
    return None
while not (found := app()):
    time.sleep(0.01)
print(pod.pid, found, flush=True)
time.sleep(60)
"""
        parent = subprocess.Popen(
            [sys.executable, "-c", supervisor, json.dumps(argv), json.dumps(list(fds))],
            pass_fds=fds,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert parent.stdout is not None
        podinit, app = (int(x) for x in parent.stdout.readline().split())
        parent.kill()
        parent.wait()
        for pid in (podinit, app):
            _wait_gone(pid)
    finally:
        sandbox.close()


def _wait_gone(pid: int) -> None:
    """Until `pid` is no more (or a zombie nobody will wait for): the kernel kills, init reaps."""
    for _ in range(500):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        os.sched_yield()
        time.sleep(0.01)
    raise AssertionError(f"process {pid} outlived its supervisor")


def test_a_pod_caught_before_its_last_unshare_is_not_cached_as_sharing_the_hosts_namespaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The zygote's child is PID 1 of its own namespace before it has left the supervisor's mount
    namespace; status reads it every second, so that read must not stick."""
    sandbox = PodSandbox(_pod(), cast(NetworkNamespace, None), uid=None)
    monkeypatch.setattr(sandbox_module, "app_pid", lambda pid: os.getpid())  # still in ours: not settled
    early = sandbox_module.pod_view(os.getpid(), sandbox)
    assert early["namespaces"]["mnt"] == os.readlink("/proc/self/ns/mnt")  # shown as it is now
    assert sandbox.seen is None  # but not kept
    monkeypatch.setattr(sandbox_module, "_own_namespace", lambda kind: "elsewhere")  # now every one differs
    settled = sandbox_module.pod_view(os.getpid(), sandbox)
    assert sandbox.seen == (os.getpid(), settled["namespaces"])
