"""What every scripted scenario needs from the embedded cluster: it running, and its front doors.

The acts and the follow-on demos drive the system the way a user would (the
chatbot, the attacker's page, the policy files), but from inside one process:
addresses come from the topology, and the pods are reached as a port-forward
reaches them, straight at their app address, so scenarios work with the seed's
local ports taken or disabled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Pod, Topology
from trustusbank.errors import UnavailableError
from trustusbank.runtime import control
from trustusbank.runtime.supervisor import ready_timeout
from trustusbank.workloads.chatbot.client import AskResult, ask

Progress = Callable[[str], None]

SUPPORT_BOT = "trustusbank-bank-agents/support-bot"
SEED_PROMPT = (
    "I am customer 12345. Please check my balance, list my recent transactions, "
    "and convert my balance to USD."
)


class ClusterUnavailable(UnavailableError, RuntimeError):
    """The cluster is not running and could not be started; the message says why."""


@dataclass
class Cluster:
    files: ClusterFiles
    started_here: bool = False

    @property
    def topology(self) -> Topology:
        return Topology.load(self.files.topology)

    def pod(self, namespace: str, deployment: str) -> Pod:
        pod = next(
            (p for p in self.topology.pods if (p.namespace, p.deployment) == (namespace, deployment)), None
        )
        if pod is None:
            raise ClusterUnavailable(f"no pod of {namespace}/{deployment} in the running cluster")
        return pod

    def url(self, namespace: str, deployment: str, port: int = 8080) -> str:
        """A pod's app address, as `kubectl port-forward` reaches it (not through the mesh)."""
        return f"http://{self.pod(namespace, deployment).app_ip}:{port}"

    @property
    def chatbot(self) -> str:
        return self.url("trustusbank-bank-frontend", "chatbot")

    @property
    def attacker(self) -> str:
        return self.url("external-attacker", "mock-attacker")

    async def ask(self, prompt: str = SEED_PROMPT, agent: str = SUPPORT_BOT) -> AskResult:
        return await ask(prompt, chatbot=self.chatbot, agent=agent)

    def exfil_total(self) -> int:
        """Every request the attacker ever received (its view can be reset; this cannot)."""
        response = httpx.get(f"{self.attacker}/api/count", trust_env=False, timeout=10)
        response.raise_for_status()
        return int(response.json()["total"])

    def exfil_events(self, limit: int = 20) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.attacker}/api/events", params={"limit": limit}, trust_env=False, timeout=10
        )
        response.raise_for_status()
        return list(response.json()["events"])

    def stop(self, progress: Progress) -> None:
        control.stop(self.files, progress)


def ensure_running(state: Path, progress: Progress) -> Cluster:
    """The cluster of this state directory, started detached (as `up --detach` does) if it is not running."""
    files = ClusterFiles(state)
    if control.running_pid(files) is not None:
        status = control.read_status(files) or {}
        if status.get("phase") == "Running":
            return Cluster(files)
        raise ClusterUnavailable(f"the cluster in {files.state} is {status.get('phase', 'starting')}; retry")
    progress("starting the embedded cluster")
    proc = control.spawn_detached(files, dict(os.environ))
    status = control.wait_running(files, proc, progress, ready_timeout() * 3)
    if status.get("phase") != "Running":
        proc.terminate()
        raise ClusterUnavailable(
            f"the cluster did not start: {status.get('message')} (see {files.logs / 'supervisor.log'})"
        )
    return Cluster(files, started_here=True)
