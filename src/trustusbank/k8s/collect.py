"""Evidence from a real cluster, in the layout `evidence ingest` reads, so the chain is the same code.

On a cluster the facts come from kubectl and the observability stack: ztunnel's access log
(each node's pod of the DaemonSet), the waypoint's request log, each pod's running digest
(`containerStatuses[].imageID`) as a `started` event, Prometheus's alerts and mailpit's
messages as the alert journal. Each is written once, as a JSON line, under
`<state>/k8s/cluster/logs/`, and a pods file stands in for the embedded topology (who is
which workload, with which image), so `evidence query|verify|report --k8s` read the chain
built there.

What a log line says is not rewritten: ztunnel's fields are its own; an agentgateway request
line gets one derived field, `decision` (deny for 401/403, which is how agentgateway
answers an authorization refusal), because the embedded waypoint logs the decision itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.k8s import logtext, observability
from trustusbank.k8s.kubectl import Kubectl, KubectlError
from trustusbank.k8s.lifecycle import OUR_NAMESPACES

ZTUNNEL = ("istio-system", "app=ztunnel")
WAYPOINT = ("trustusbank-platform", "gateway.networking.k8s.io/gateway-name=trustusbank-agentgw")
TRUST_DOMAIN = "cluster.local"
DENY_STATUSES = (401, 403)


@dataclass
class Collected:
    """What one collection added (counts), and what it could not reach."""

    pods: int = 0
    started: int = 0
    access: int = 0
    requests: int = 0
    alerts: int = 0
    mails: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.pods} pods; new: {self.started} pod starts, {self.access} ztunnel access lines, "
            f"{self.requests} waypoint requests, {self.alerts} alerts, {self.mails} mails"
        )


class Cursor:
    """Per stream, the newest time mirrored and the lines seen at it: nothing twice, nothing skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def fresh(self, stream: str, moment: str, text: str) -> bool:
        entry = self.data.setdefault(stream, {"time": "", "seen": []})
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        if moment < entry["time"] or (moment == entry["time"] and digest in entry["seen"]):
            return False
        if moment > entry["time"]:
            entry["time"], entry["seen"] = moment, []
        entry["seen"].append(digest)
        return True

    def since(self, prefix: str) -> str | None:
        """The oldest newest-time among a selector's streams: kubectl's `--since-time` for all of them."""
        times = [e["time"] for s, e in self.data.items() if s.startswith(prefix) and e["time"]]
        return min(times) if times else None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data), encoding="utf-8")
        tmp.replace(self.path)


def _append(path: Path, records: Iterable[dict[str, Any]]) -> int:
    lines = [json.dumps(r, sort_keys=True) + "\n" for r in records]
    if lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.writelines(lines)
    return len(lines)


def _deployment(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata", {})
    labels = meta.get("labels") or {}
    if labels.get("app"):
        return str(labels["app"])
    owner: dict[str, Any] = next(iter(meta.get("ownerReferences") or []), {})
    name = str(owner.get("name") or meta.get("name", ""))
    return name.rsplit("-", 1)[0] if owner.get("kind") == "ReplicaSet" else name


def _digest(image_id: object) -> str | None:
    text = str(image_id or "")
    return text[text.index("sha256:") :] if "sha256:" in text else None


def pods_view(pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The pods as the evidence reader's topology: name, namespace, workload, service account, IP, image."""
    out = []
    for pod in pods:
        meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
        containers = spec.get("containers") or [{}]
        ip = str(status.get("podIP") or "")
        out.append(
            {
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "deployment": _deployment(pod),
                "service_account": spec.get("serviceAccountName") or "default",
                "ip": ip,
                "app_ip": ip,
                "image": containers[0].get("image", ""),
            }
        )
    return {"trust_domain": TRUST_DOMAIN, "pods": out}


def started_events(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One `started` event per running container, with the digest it runs (what a tag meant then)."""
    events = []
    for pod in pods:
        meta = pod.get("metadata", {})
        for status in pod.get("status", {}).get("containerStatuses") or []:
            started = (status.get("state") or {}).get("running", {}).get("startedAt")
            if not started:
                continue
            events.append(
                {
                    "time": started,
                    "event": "started",
                    "pod": f"{meta.get('namespace')}/{meta.get('name')}",
                    "namespace": meta.get("namespace"),
                    "deployment": _deployment(pod),
                    "image": status.get("image"),
                    "digest": _digest(status.get("imageID")),
                    "container": status.get("name"),
                }
            )
    return events


def waypoint_fields(fields: dict[str, Any]) -> dict[str, Any]:
    status = fields.get("http.status")
    decision = (
        "deny"
        if status in DENY_STATUSES
        else "error"
        if isinstance(status, int) and status >= 500
        else "allow"
    )
    return {**fields, "decision": decision}


class Collector:
    def __init__(self, kubectl: Kubectl, files: ClusterFiles, endpoints: dict[str, str]) -> None:
        self.kubectl, self.files, self.endpoints = kubectl, files, endpoints
        self.cursor = Cursor(files.root / "k8s-cursor.json")

    def collect(self) -> Collected:
        done = Collected()
        self._pods(done)
        self._logs(done, "ztunnel", ZTUNNEL, lambda f: f if f.get("scope") == "access" else None)
        self._logs(done, "waypoint", WAYPOINT, lambda f: waypoint_fields(f) if "http.status" in f else None)
        self._alerts(done)
        self.cursor.save()
        return done

    def _pods(self, done: Collected) -> None:
        pods: list[dict[str, Any]] = []
        for namespace in OUR_NAMESPACES:
            try:
                pods += self.kubectl.items("pods", namespace)
            except KubectlError as exc:
                done.problems.append(str(exc))
        done.pods = len(pods)
        self.files.root.mkdir(parents=True, exist_ok=True)
        self.files.topology.write_text(json.dumps(pods_view(pods), indent=1), encoding="utf-8")
        fresh = [
            e
            for e in started_events(pods)
            if self.cursor.fresh(f"started/{e['pod']}", e["time"], json.dumps(e))
        ]
        done.started = _append(self.files.events, fresh)

    def _logs(self, done: Collected, family: str, where: tuple[str, str], keep: Any) -> None:
        namespace, selector = where
        try:
            lines = self.kubectl.logs(namespace, selector, self.cursor.since(f"{family}/"))
        except KubectlError as exc:
            done.problems.append(str(exc))
            return
        by_pod: dict[str, list[dict[str, Any]]] = {}
        for pod, line in lines:
            fields = logtext.parse(line)
            kept = keep(fields) if fields is not None else None
            if kept is None or not self.cursor.fresh(f"{family}/{pod}", str(kept.get("time", "")), line):
                continue
            by_pod.setdefault(pod, []).append(kept)
        added = sum(_append(self.files.logs / f"{family}-{pod}.jsonl", rows) for pod, rows in by_pod.items())
        if family == "ztunnel":
            done.access += added
        else:
            done.requests += added

    def _alerts(self, done: Collected) -> None:
        rows: list[dict[str, Any]] = []
        try:
            for alert in observability.prometheus_alerts(self.endpoints["prometheus"]):
                if alert.get("state") != "firing":
                    continue
                labels = alert["labels"]
                row = {
                    "time": alert.get("activeAt"),
                    "event": "firing",
                    "alertname": labels.get("alertname"),
                    "labels": labels,
                    "annotations": alert.get("annotations") or {},
                }
                if self.cursor.fresh(
                    f"alert/{labels.get('alertname')}", str(row["time"]), json.dumps(labels)
                ):
                    rows.append(row)
            for message in observability.mailpit_messages(self.endpoints["mailpit"]):
                name = observability.alertname_of(message.get("Subject"))
                if name and self.cursor.fresh(f"mail/{message['ID']}", "-", str(message["ID"])):
                    rows.append(
                        {"time": message.get("Created"), "event": "notified", "alertname": name,
                         "subject": message.get("Subject")}
                    )  # fmt: skip
        except (KeyError, observability.ObservabilityUnavailable) as exc:
            done.problems.append(f"alerts not collected: {exc}")
        done.alerts = sum(1 for r in rows if r["event"] == "firing")
        done.mails = len(rows) - done.alerts
        _append(self.files.logs / "alerts.jsonl", rows)
