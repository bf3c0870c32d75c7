"""The write-up's browser tabs on a real cluster: `kubectl port-forward` on the same local ports.

Each forward is a detached `kubectl port-forward` whose pid is kept in the state directory,
so `k8s status` can say which are alive and `k8s down` stops them. Ports match the embedded
console's (18009 chatbot, 18011 attacker, 18006 registry, 18001 Grafana, 18002 Prometheus
/alerts, 18012 the SOC inbox, 18007 kagent's UI).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from trustusbank.errors import UnavailableError
from trustusbank.k8s.plan import KAGENT_NS
from trustusbank.k8s.values import OBSERVABILITY_NS


@dataclass(frozen=True)
class Forward:
    local: int
    namespace: str
    target: str  # "svc/<name>"
    port: int
    what: str
    name: str  # how the story asks for it: chatbot, attacker, prometheus, mailpit...

    def argv(self, context: str | None) -> list[str]:
        where = ["--context", context] if context else []
        return [
            "kubectl", *where, "port-forward", "--namespace", self.namespace,
            self.target, f"{self.local}:{self.port}", "--address", "127.0.0.1",
        ]  # fmt: skip


FORWARDS = (
    Forward(18009, "trustusbank-bank-frontend", "svc/chatbot", 80, "chatbot", "chatbot"),
    Forward(18011, "external-attacker", "svc/mock-attacker", 8080, "attacker's view", "attacker"),
    Forward(18006, "trustusbank-platform", "svc/agentregistry", 8080, "agent registry", "registry"),
    Forward(
        18001,
        OBSERVABILITY_NS,
        "svc/kube-prometheus-stack-grafana",
        80,
        "Grafana (/d/dora-evidence)",
        "grafana",
    ),
    Forward(
        18002,
        OBSERVABILITY_NS,
        "svc/kube-prometheus-stack-prometheus",
        9090,
        "Prometheus (/alerts)",
        "prometheus",
    ),
    Forward(18012, OBSERVABILITY_NS, "svc/mailpit-http", 80, "SOC inbox (mailpit)", "mailpit"),
    Forward(18007, KAGENT_NS, "svc/kagent-ui", 8080, "kagent UI (sessions, traces)", "kagent-ui"),
)


class ForwardMissing(UnavailableError, RuntimeError):
    """A port-forward the story needs is not running."""


def endpoints(workdir: Path) -> dict[str, str]:
    """`name` → `http://127.0.0.1:<port>` for every recorded forward that is running."""
    found = {}
    for entry in recorded(workdir):
        pid = entry.get("pid")
        if isinstance(pid, int) and alive(pid):
            found[str(entry.get("name"))] = f"http://127.0.0.1:{entry['local']}"
    return found


def ensure(workdir: Path, context: str | None) -> dict[str, str]:
    """The running forwards, restarted if one the story uses is down; ForwardMissing names a busy port."""
    needed = ("chatbot", "attacker", "prometheus", "mailpit")
    found = endpoints(workdir)
    if all(name in found for name in needed):
        return found
    start(workdir, context)
    found = endpoints(workdir)
    gone = [f for f in FORWARDS if f.name in needed and f.name not in found]
    if gone:
        raise ForwardMissing(
            "; ".join(
                f"port {f.local} ({f.what}) is not forwarded: is it taken by another process?" for f in gone
            )
        )
    return found


def _record(workdir: Path) -> Path:
    return workdir / "port-forwards.json"


def busy(port: int) -> bool:
    """Something else listens on 127.0.0.1:`port` (another cluster's forward, say)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start(workdir: Path, context: str | None) -> list[dict[str, object]]:
    """Start every forward detached (its output in <workdir>/logs); returns what was started.

    A local port already taken is not forwarded, and said: the browser tab would show
    whatever holds it (another cluster), which is worse than nothing."""
    stop(workdir)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: list[dict[str, object]] = []
    for forward in FORWARDS:
        if busy(forward.local):
            started.append({**asdict(forward), "pid": None, "busy": True})
            continue
        with (logs / f"port-forward-{forward.local}.log").open("ab") as log:
            proc = subprocess.Popen(
                forward.argv(context),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append({**asdict(forward), "pid": proc.pid, "busy": False})
    _record(workdir).write_text(json.dumps(started, indent=2), encoding="utf-8")
    return started


def recorded(workdir: Path) -> list[dict[str, object]]:
    try:
        return list(json.loads(_record(workdir).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return []


def alive(pid: int) -> bool:
    """Still running, and still a `kubectl port-forward` (a recycled pid is someone else's)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): the pid is all there is to go on
    return b"port-forward" in cmdline


def stop(workdir: Path) -> int:
    """Stop the recorded forwards; how many were still running."""
    stopped = 0
    for entry in recorded(workdir):
        pid = entry.get("pid")
        if isinstance(pid, int) and alive(pid):
            os.kill(pid, signal.SIGTERM)
            stopped += 1
    _record(workdir).unlink(missing_ok=True)
    return stopped
