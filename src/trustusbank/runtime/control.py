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
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import ClusterFiles

STOP_TIMEOUT = 30.0


def read_status(files: ClusterFiles) -> dict[str, Any] | None:
    try:
        return dict(json.loads(files.status.read_text()))
    except (OSError, json.JSONDecodeError):
        return None


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


def running_pid(files: ClusterFiles) -> int | None:
    """The supervisor's pid when a cluster runs from this state directory."""
    try:
        pid = int(files.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


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
    # The supervisor removes its pid file as its last act; a process that has exited
    # but not yet been reaped by its parent still answers kill(pid, 0).
    while alive(pid) and files.pid.exists() and time.monotonic() < deadline:
        progress("stopping pods and node proxies")
        time.sleep(0.2)
    if alive(pid) and files.pid.exists():
        os.kill(pid, signal.SIGKILL)
        status = read_status(files) or {}
        for entry in [*status.get("pods", []), *status.get("nodes", [])]:
            child = entry.get("pid") or entry.get("ztunnel_pid")
            if alive(child):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child, signal.SIGKILL)
    files.pid.unlink(missing_ok=True)
    return True


def pod_env(files: ClusterFiles, pod_ref: str) -> tuple[dict[str, str], Path] | None:
    """The environment a command needs to run "inside" a pod (kubectl exec), and the pod's dir."""
    from trustusbank.cluster.ports import OUTBOUND_PORT
    from trustusbank.cluster.topology import Topology
    from trustusbank.env import POD_IP
    from trustusbank.runtime.podspec import PROXY_VARS

    topo = Topology.load(files.topology)
    namespace, _, name = pod_ref.partition("/")
    pod = next(
        (p for p in topo.pods if p.namespace == namespace and name in (p.name, p.deployment)),
        None,
    )
    if pod is None:
        return None
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env[POD_IP.name] = pod.app_ip
    ns = topo.namespaces.get(pod.namespace)
    if ns and ns.ambient:
        env["ALL_PROXY"] = env["all_proxy"] = f"socks5h://{pod.ip}:{OUTBOUND_PORT}"
    return env, files.root / "pods" / pod.namespace / pod.name
