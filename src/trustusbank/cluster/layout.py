"""Where a running cluster keeps its files inside the state directory."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustusbank.telemetry.jsonlog import append_lines

DEFENCE_DIR = "08-defence"


@dataclass(frozen=True)
class ClusterFiles:
    state: Path

    @property
    def root(self) -> Path:
        return self.state / "cluster"

    @property
    def topology(self) -> Path:
        return self.root / "topology.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def istiod_socket(self) -> Path:
        return self.root / "istiod.sock"

    @property
    def trust_bundle(self) -> Path:
        """The CA's root certificate, public: what node proxies verify peers against."""
        return self.root / "trust-bundle.pem"

    @property
    def ca(self) -> Path:
        return self.root / "ca"

    @property
    def applied(self) -> Path:
        """Manifests applied on top of deploy/ (e.g. the defence policy set)."""
        return self.root / "applied"

    @property
    def images(self) -> Path:
        """The image store (the seed's localhost:5001 registry) and the org's public key; pods read it."""
        return self.root / "images"

    @property
    def signing(self) -> Path:
        """Private signing keys (0700/0600): never handed to a pod."""
        return self.root / "signing"

    @property
    def control_socket(self) -> Path:
        """The supervisor's control requests (rollout restarts), owner-only."""
        return self.root / "control.sock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def traces(self) -> Path:
        return self.root / "traces"

    @property
    def events(self) -> Path:
        return self.logs / "runtime.jsonl"

    def record_event(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Append one event (a JSON line) to the runtime log the evidence trail ingests; the one writer."""
        entry = {"time": time.time(), "event": event, **fields}
        self.write_event(entry)
        return entry

    def write_event(self, entry: Mapping[str, Any]) -> None:
        """Append an event made earlier (held while the disk was full); ENOSPC raises, to the caller."""
        self.logs.mkdir(parents=True, exist_ok=True)
        append_lines(self.events, [json.dumps(entry)])  # never dropped quietly

    @property
    def evidence_db(self) -> Path:
        """The append-only, hash-chained evidence store; it outlives `down` as the logs do."""
        return self.root / "evidence.sqlite3"

    @property
    def evidence_head(self) -> Path:
        """The evidence chain's last (seq, hash), kept apart from the database to catch a cut tail."""
        return self.root / "evidence.head.json"

    @property
    def reports(self) -> Path:
        return self.state / "reports"

    def pod_dir(self, namespace: str, pod: str) -> Path:
        return self.root / "pods" / namespace / pod

    @staticmethod
    def pod_outputs(pod_dir: Path) -> dict[str, Path]:
        """Where a pod writes its JSON logs and spans: its own, so no pod can touch another's."""
        return {"logs": pod_dir / "out" / "logs", "traces": pod_dir / "out" / "traces"}

    def outputs(self, kind: str, pattern: str) -> list[Path]:
        """Every `logs` or `traces` file matching `pattern`: the components' and each pod's own."""
        found = list(self.root.joinpath(kind).glob(pattern))
        found += self.root.glob(f"pods/*/*/out/{kind}/{pattern}")
        return sorted(found)

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / node

    def waypoint_dir(self, gateway: str) -> Path:
        """A waypoint's private directory (token, certificates), by `<namespace>/<gateway>`."""
        return self.root / "waypoints" / gateway.replace("/", "_")

    def waypoint_log(self, gateway: str) -> Path:
        return self.logs / f"waypoint-{gateway.replace('/', '_')}.jsonl"

    def access_log(self, node: str) -> Path:
        return self.logs / f"ztunnel-{node}.jsonl"

    @property
    def istiod_log(self) -> Path:
        """istiod's own log (CSRs signed and refused): the control plane's process."""
        return self.logs / "istiod.log"

    def ztunnel_log(self, node: str) -> Path:
        """A node proxy's own log (policy loads, errors), beside its JSON access log."""
        return self.logs / f"ztunnel-{node}.log"

    def pod_log(self, namespace: str, pod: str) -> Path:
        return self.logs / "pods" / namespace / f"{pod}.log"

    def make(self) -> None:
        for path in (self.root, self.applied, self.logs, self.traces):
            path.mkdir(parents=True, exist_ok=True)
