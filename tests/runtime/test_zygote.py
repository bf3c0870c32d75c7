"""The pod zygote, without a cluster: real pods forked from it, seen as the supervisor sees them."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Pod, PodPort
from trustusbank.kernel.netns import NetworkNamespace
from trustusbank.runtime.processes import ManagedProcess
from trustusbank.runtime.sandbox import PodSandbox, app_pid
from trustusbank.runtime.supervisor import Supervisor
from trustusbank.runtime.zygote_client import KILLED, ForkedProcess, ForkRequest, ZygoteClient

SERVE = ["serve", "fx-api", "--host", "0.0.0.0", "--port", "0", "--log-level", "info"]


@pytest.fixture
async def zygote(tmp_path: Path) -> AsyncIterator[ZygoteClient]:
    client = await ZygoteClient.start(tmp_path / "zygote.log", 120)
    yield client
    await client.stop()


def _pod_env(pod_dir: Path, ip: str = "127.0.0.1") -> dict[str, str]:
    return {**os.environ, "TRUSTUSBANK_POD_IP": ip, "TRUSTUSBANK_STATE_DIR": str(pod_dir / "state")}


def _listening(log: Path) -> tuple[str, list[str]]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text, [line for line in text.splitlines() if "listening on http://" in line]


async def _address(log: Path, proc: ForkedProcess | asyncio.subprocess.Process, nth: int = 1) -> str:
    """The address the `nth` run in this log says it listens on, once it does; the log if it died."""
    while True:
        text, said = _listening(log)
        if len(said) >= nth:
            return said[nth - 1].rsplit("listening on ", 1)[1].strip()
        if proc.returncode is not None:
            raise AssertionError(f"the pod exited with {proc.returncode}:\n{text}")
        await asyncio.sleep(0.05)


def _field(pid: int, name: str) -> str:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(line.split(":", 1)[1].strip() for line in lines if line.startswith(name + ":"))


async def test_a_forked_pod_serves_with_its_env_dir_log_and_session(
    tmp_path: Path, zygote: ZygoteClient
) -> None:
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    log = tmp_path / "pod.log"
    proc = await zygote.spawn(ForkRequest(SERVE, _pod_env(pod_dir), pod_dir), log)
    url = await asyncio.wait_for(_address(log, proc), 60)
    assert url.startswith("http://127.0.0.1:")  # TRUSTUSBANK_POD_IP, from the pod's env
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(f"{url}/healthz")).status_code == 200
    assert int(_field(proc.pid, "PPid")) == zygote.proc.pid  # forked, not a fresh interpreter
    assert os.getsid(proc.pid) == proc.pid  # its own session: stop() signals its process group
    assert os.readlink(f"/proc/{proc.pid}/cwd") == str(pod_dir)
    assert not proc.has_exited()
    os.killpg(proc.pid, signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGTERM  # uvicorn re-raises it, as fresh
    assert proc.has_exited()


async def test_an_exit_status_reaches_the_supervisor_as_a_fresh_interpreter_s_would(
    tmp_path: Path, zygote: ZygoteClient
) -> None:
    argv = ["serve", "no-such-workload"]
    forked = await zygote.spawn(ForkRequest(argv, dict(os.environ), tmp_path), tmp_path / "forked.log")
    fresh = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "trustusbank", *argv),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    code = await asyncio.wait_for(forked.wait(), 60)
    assert code == await fresh.wait() != 0
    assert "unknown workload 'no-such-workload'" in (tmp_path / "forked.log").read_text()


def _sandboxed_pod() -> Pod:
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


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a pod sandbox with its own uid needs root here")


async def _start_sandboxed(tmp_path: Path, zygote: ZygoteClient) -> tuple[PodSandbox, ForkedProcess]:
    """A pod in a sandbox of its own (as `up` makes them when isolated), forked, once it serves."""
    files = ClusterFiles(tmp_path / "state")
    files.make()
    pod_dir = files.pod_dir("test", "probe-0")
    pod_dir.mkdir(parents=True)
    pod = _sandboxed_pod()
    sandbox = PodSandbox(pod, NetworkNamespace.create(), uid=201_234)
    argv = ["serve", "fx-api", "--host", "0.0.0.0", "--port", "8080", "--log-level", "info"]
    spec = sandbox.spec([sys.executable, "-m", "trustusbank", *argv], files, pod_dir, [])
    request = ForkRequest(argv, _pod_env(pod_dir, pod.app_ip), pod_dir, (sandbox.netns.fd,), spec)
    log = tmp_path / "pod.log"
    try:
        proc = await zygote.spawn(request, log)
        assert await asyncio.wait_for(_address(log, proc), 60) == f"http://{pod.app_ip}:8080"
    except BaseException:
        sandbox.close()
        raise
    return sandbox, proc


@ROOT_ONLY
async def test_a_forked_pod_is_pid_1_of_its_own_namespaces_with_its_own_uid(
    tmp_path: Path, zygote: ZygoteClient
) -> None:
    sandbox, proc = await _start_sandboxed(tmp_path, zygote)
    pod = sandbox.pod
    try:
        app = app_pid(proc.pid)
        assert app == proc.pid  # forked straight into its PID namespace: no podinit process in between
        assert _field(app, "NSpid").split() == [str(app), "1"]  # PID 1 of its own PID namespace
        assert _field(app, "Uid").split()[0] == "201234"
        for kind in ("pid", "mnt", "uts", "ipc"):
            assert os.readlink(f"/proc/{app}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}"), kind
        assert os.stat(f"/proc/{app}/ns/net").st_ino == os.fstat(sandbox.netns.fd).st_ino
        # It listens in its own network namespace only: on the host's loopback nothing has that address.
        reader, writer = await sandbox.netns.open_connection(pod.app_ip, 8080)
        writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(pod.app_ip, 8080)
        os.killpg(proc.pid, signal.SIGTERM)  # to podinit's part, which passes it on to PID 1
        # As PID 1 of its namespace, the SIGTERM uvicorn re-raises after its graceful stop is ignored.
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        sandbox.close()


@ROOT_ONLY
async def test_a_sandboxed_pod_dies_with_its_zygote(tmp_path: Path, zygote: ZygoteClient) -> None:
    """The lifeline: the zygote's death kills podinit's part (its death signal), and that PID 1."""
    sandbox, proc = await _start_sandboxed(tmp_path, zygote)
    try:
        app = app_pid(proc.pid)
        assert app is not None
        app_fd = os.pidfd_open(app)  # readable once it has exited
        os.kill(zygote.proc.pid, signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 60) == KILLED
        readable, _, _ = await asyncio.to_thread(select.select, [app_fd], [], [], 60)
        os.close(app_fd)
        assert readable, f"the pod's PID 1 ({app}) outlived its zygote"
    finally:
        sandbox.close()


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, object]]] = []
        self.changed = asyncio.Event()

    def record(self, kind: str, fields: dict[str, object]) -> None:
        self.seen.append((kind, fields))
        self.changed.set()

    def of(self, kind: str) -> list[dict[str, object]]:
        return [fields for seen, fields in self.seen if seen == kind]

    async def until(self, kind: str, count: int = 1) -> list[dict[str, object]]:
        while len(self.of(kind)) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 60)
        return self.of(kind)


async def _never_ready() -> bool:
    return False


async def test_a_crashed_zygote_takes_its_pods_with_it_and_they_restart_as_fresh_interpreters(
    tmp_path: Path, zygote: ZygoteClient
) -> None:
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    env = _pod_env(pod_dir)
    command = [sys.executable, "-m", "trustusbank", *SERVE]
    events = Events()
    managed = ManagedProcess(
        name="test/web-0",
        command=command,
        env=env,
        cwd=pod_dir,
        log_file=tmp_path / "pod.log",
        probe=_never_ready,
        events=events.record,
        zygote=zygote,
        fork=ForkRequest.of_command(command, env, pod_dir),
    )
    await managed.start()
    try:
        first = (await events.until("started"))[0]
        assert first["forked"] is True
        assert int(_field(int(str(first["pid"])), "PPid")) == zygote.proc.pid
        assert managed.proc is not None
        await asyncio.wait_for(_address(tmp_path / "pod.log", managed.proc), 60)  # it serves
        os.kill(zygote.proc.pid, signal.SIGKILL)
        crashed = (await events.until("crashed"))[0]
        assert crashed["exit_code"] == KILLED  # its death signal: no pod outlives its zygote
        fallback = (await events.until("zygote-fallback"))[0]
        assert fallback["process"] == "test/web-0"
        assert "zygote" in str(fallback["reason"])
        second = (await events.until("started", 2))[1]
        assert second["forked"] is False
        assert int(_field(int(str(second["pid"])), "PPid")) == os.getpid()  # a fresh interpreter of ours
        assert managed.proc is not None
        await asyncio.wait_for(_address(tmp_path / "pod.log", managed.proc, nth=2), 60)  # it serves again
    finally:
        await managed.stop()
    assert events.seen[-1][0] == "stopped"


async def test_a_zygote_that_never_says_ready_leaves_the_supervisor_on_fresh_interpreters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It exits before it is ready (here: no Python to run it): `up` goes on, and says why."""
    files = ClusterFiles(tmp_path / "state")
    files.make()
    said: list[str] = []
    supervisor = Supervisor(files, tmp_path / "deploy", said.append)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    assert await supervisor._start_zygote() is None
    events = [json.loads(line) for line in files.events.read_text().splitlines()]
    unavailable = [e for e in events if e["event"] == "zygote-unavailable"]
    assert len(unavailable) == 1
    assert "never said ready (exit 1)" in unavailable[0]["reason"]
    assert any("starting fresh interpreters" in line for line in said)
