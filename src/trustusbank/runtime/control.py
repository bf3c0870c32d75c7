"""The client side of the runtime: is a cluster running, start one detached, stop it, read its status."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.errors import OperationError
from trustusbank.paths import deploy_dir
from trustusbank.runtime import podenv

if TYPE_CHECKING:  # the topology loads only for the commands that look a pod up
    from trustusbank.cluster.topology import Pod

STOP_TIMEOUT = 30.0


def read_status(files: ClusterFiles) -> dict[str, Any] | None:
    try:
        return dict(json.loads(files.status.read_text()))
    except (OSError, json.JSONDecodeError):
        return None


def deploy_of(files: ClusterFiles) -> Path:
    """The manifest bundle the running cluster was started from (what an apply is validated against)."""
    recorded = (read_status(files) or {}).get("deploy")
    return Path(recorded) if recorded else deploy_dir()


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(pid: int | None) -> bool:
    """Alive and not a zombie: a process that died but was not reaped yet serves nothing."""
    if not alive(pid):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return not Path("/proc/self").exists()  # no /proc (macOS): kill(0) is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _is_supervisor(pid: int) -> bool:
    """Whether `pid` is a `trustusbank up` process: after a kill -9 the pid file outlives the
    supervisor, and its pid may since belong to something else."""
    if not running(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True  # not ours to read: assume the worst, a live cluster
    return any(b"trustusbank" in arg for arg in argv) and b"up" in argv


def _recorded_pid(files: ClusterFiles) -> int | None:
    try:
        return int(files.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(files: ClusterFiles) -> int | None:
    """The supervisor's pid when a cluster runs from this state directory."""
    pid = _recorded_pid(files)
    return pid if pid is not None and _is_supervisor(pid) else None


def listed_pids(status: dict[str, Any]) -> list[int]:
    """Every process of the cluster that status.json names: pods, node proxies, istiod, console, zygote."""
    entries = [*status.get("pods", []), *status.get("nodes", []), *status.get("control_plane", [])]
    pids = [e.get("pid") or e.get("ztunnel_pid") for e in entries]
    pids += [(status.get("console") or {}).get("pid"), status.get("zygote_pid")]
    return [int(pid) for pid in pids if pid]


def _when(moment: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment)) if moment else "an unknown time"


@dataclass(frozen=True)
class LostSupervisor:
    """A supervisor that died without stopping its cluster (kill -9, the OOM killer): a clean stop
    removes the pid file, so one naming a dead process is the trace such a death leaves."""

    pid: int
    started_at: float | None
    status_written_at: float | None
    phase: str | None
    survivors: list[int]  # processes status.json listed that still run

    def describe(self) -> str:
        if self.survivors:
            pids = " ".join(map(str, self.survivors))
            ended = f"{len(self.survivors)} of its processes still run, unmanaged (pids {pids}): end them,"
            ended += " then"
        else:
            ended = "its pods and node proxies ended with it;"
        return (
            f"the supervisor (pid {self.pid}) of the cluster started at {_when(self.started_at)} died "
            f"without stopping it (status last written at {_when(self.status_written_at)}); {ended} "
            "`trustusbank up` starts it again"
        )

    def to_event(self) -> dict[str, object]:
        return asdict(self)


def lost_supervisor(files: ClusterFiles) -> LostSupervisor | None:
    """The supervisor that died without stopping its cluster, if that is the state left here."""
    pid = _recorded_pid(files)
    if pid is None or _is_supervisor(pid):
        return None
    status = read_status(files) or {}
    try:
        written: float | None = files.status.stat().st_mtime
    except OSError:
        written = None
    started = status.get("started_at") if status.get("pid") == pid else None
    survivors = [child for child in listed_pids(status) if running(child)]
    return LostSupervisor(pid, started, written, status.get("phase"), survivors)


def record_lost_supervisor(files: ClusterFiles) -> LostSupervisor | None:
    """Before a new start from this state: the last supervisor's death as an event, so the evidence
    trail shows the gap (when it died, what was running) rather than one cluster run into the next."""
    lost = lost_supervisor(files)
    if lost is not None:
        files.record_event("supervisor-lost", lost.to_event())
    return lost


def spawn_detached(files: ClusterFiles, env: dict[str, str]) -> subprocess.Popen[bytes]:
    files.make()
    log = (files.logs / "supervisor.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "trustusbank", "up", "--supervise"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    finally:
        log.close()


def wait_running(
    files: ClusterFiles, proc: subprocess.Popen[bytes], progress: Callable[[str], None], timeout: float
) -> dict[str, Any]:
    """Follow the detached supervisor until it runs or fails; returns the last status."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        status = read_status(files) or {}
        for pod in status.get("pods", []):
            key = f"{pod['namespace']}/{pod['name']}"
            if pod.get("ready") and key not in seen:
                seen.add(key)
                progress(f"pod {key} ready")
        if status.get("pid") == proc.pid and status.get("phase") in ("Running", "Failed"):
            return status
        if proc.poll() is not None:
            return status | {
                "phase": "Failed",
                "message": status.get("message") or f"supervisor exited ({proc.returncode})",
            }
        time.sleep(0.2)
    return (read_status(files) or {}) | {"phase": "Failed", "message": f"not ready after {timeout:.0f}s"}


def stop(files: ClusterFiles, progress: Callable[[str], None]) -> bool:
    """Stop the supervisor (which stops its pods); False when nothing was running."""
    pid = running_pid(files)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    progress("stopping pods and node proxies")  # once: a spinner shows it; a plain log line repeats
    # The supervisor removes its pid file as its last act; a process that has exited
    # but not yet been reaped by its parent still answers kill(pid, 0).
    while alive(pid) and files.pid.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(pid) and files.pid.exists():
        os.kill(pid, signal.SIGKILL)
        for child in listed_pids(read_status(files) or {}):
            if alive(child):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child, signal.SIGKILL)
    files.pid.unlink(missing_ok=True)
    return True


CHATBOT = ("trustusbank-bank-frontend", "chatbot")


def chatbot_url(files: ClusterFiles) -> str | None:
    """This state dir's chatbot, as its operator reaches it: the seed's port-forward if this cluster
    holds it, else the chatbot pod's own address (another cluster may hold 18009). None: not running."""
    status = read_status(files) if running_pid(files) is not None else None
    if not status:
        return None
    name = "/".join(CHATBOT)
    for forward in status.get("forwards", []):
        if forward.get("name") == name and str(forward.get("state", "")).startswith("http"):
            return str(forward["state"])
    pod = find_pod(files, name)
    return f"http://{pod.app_ip}:{pod.ports[0].port}" if pod is not None and pod.ports else None


def find_pod(files: ClusterFiles, pod_ref: str) -> Pod | None:
    """A pod of the running cluster's topology, by `<namespace>/<pod or deployment>`."""
    from trustusbank.cluster.topology import Topology

    namespace, _, name = pod_ref.partition("/")
    topo = Topology.load(files.topology)
    return next((p for p in topo.pods if p.namespace == namespace and name in (p.name, p.deployment)), None)


def pod_status(files: ClusterFiles, pod_ref: str) -> dict[str, Any] | None:
    """A pod's entry in status.json, by `<namespace>/<pod or deployment>`."""
    pod = find_pod(files, pod_ref)
    if pod is None:
        return None
    entries = (read_status(files) or {}).get("pods", [])
    return next((dict(e) for e in entries if (e["namespace"], e["name"]) == (pod.namespace, pod.name)), None)


@dataclass(frozen=True)
class PodCommand:
    """How to run a command in a pod (`kubectl exec`): the argv, environment and directory to use."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path | None


class PodNotRunning(OperationError):
    """The pod exists but has no running process to enter."""


def _proc_environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as raw:
        items = raw.read().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in items if b"=" in item)


def pod_command(
    files: ClusterFiles, pod_ref: str, argv: list[str], extra_env: dict[str, str] | None = None
) -> PodCommand | None:
    """`argv` as run inside pod `pod_ref`, or None when there is no such pod.

    Isolated, that is inside its namespaces, as its uid, with its own environment (read from
    its PID 1, as a container's is its own). Cooperative, a host process given the pod's
    capture and address: the same traffic, but nothing keeps it in.
    """
    entry = pod_status(files, pod_ref)
    if entry is not None and entry.get("isolated"):
        if not entry.get("app_pid"):
            raise PodNotRunning(f"pod {pod_ref} is not running")
        pid = int(entry["app_pid"])
        env = podenv.read(files, entry["namespace"], entry["name"]) or _proc_environ(pid)
        env.update(extra_env or {})
        cwd = files.pod_dir(entry["namespace"], entry["name"]).resolve()
        spec = {"pid": pid, "cwd": str(cwd), "argv": argv}
        return PodCommand(
            [sys.executable, "-m", "trustusbank.runtime.podinit", "enter", json.dumps(spec)], env, None
        )
    found = pod_env(files, pod_ref)
    if found is None:
        return None
    env, pod_dir = found
    env.update(extra_env or {})
    return PodCommand(argv, env, pod_dir if pod_dir.exists() else None)


def pod_env(files: ClusterFiles, pod_ref: str) -> tuple[dict[str, str], Path] | None:
    """The environment a command needs to run "inside" a pod (kubectl exec), and the pod's dir."""
    from trustusbank.cluster.ports import OUTBOUND_PORT
    from trustusbank.cluster.topology import Topology
    from trustusbank.env import POD_IP
    from trustusbank.runtime.podspec import PROXY_VARS

    pod = find_pod(files, pod_ref)
    if pod is None:
        return None
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env[POD_IP.name] = pod.app_ip
    ns = Topology.load(files.topology).namespaces.get(pod.namespace)
    if ns and ns.ambient:
        env["ALL_PROXY"] = env["all_proxy"] = f"socks5h://{pod.ip}:{OUTBOUND_PORT}"
    return env, files.root / "pods" / pod.namespace / pod.name
