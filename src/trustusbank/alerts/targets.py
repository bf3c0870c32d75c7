"""What the evaluator scrapes, found in the cluster's topology as Prometheus' pod monitors would find it.

- every node proxy (ztunnel's DaemonSet): `http://<node-ip>:15020/metrics`;
- every waypoint proxy: `http://<pod-ip>:15020/metrics`;
- every kagent agent (`app: kagent`): `http://<pod-ip>:<port>/metrics`;
- every MCP guard (`app: mcp-guard`, job `mcp-guard`): `http://<pod-ip>:<port>/metrics`
  (McpToolDrift reads its drift counter).

Scrapes leave the evaluator's pod like any of its traffic, through its node
proxy's capture: to an admin port (15020) as plain TCP, since node proxies and
waypoints are not captured; to an agent or the guard over HBONE with the evaluator's
identity, so their namespace's AuthorizationPolicy must admit it, as on a cluster
(the agents' does, deploy/08-defence/allow-metrics-scrape.yaml; trustusbank-platform has
no default-deny). A pod address is never sent to a waypoint: waypoints serve Services.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustusbank.cluster.ports import METRICS_PORT
from trustusbank.cluster.topology import Topology

KAGENT_APP = "kagent"
GUARD_APP = "mcp-guard"
# Pods scraped on their first declared port, by `app` label: the job each one's series carry.
APP_JOBS = {KAGENT_APP: "agent", GUARD_APP: "mcp-guard"}


@dataclass(frozen=True)
class Target:
    job: str
    url: str

    @property
    def instance(self) -> str:
        return self.url.split("://", 1)[-1].split("/", 1)[0]


def targets_from_topology(topology: Topology) -> list[Target]:
    found = [Target("ztunnel", f"http://{node.ip}:{METRICS_PORT}/metrics") for node in topology.nodes]
    for pod in topology.pods:
        if pod.role == "waypoint":
            found.append(Target("waypoint", f"http://{pod.ip}:{METRICS_PORT}/metrics"))
        elif (job := APP_JOBS.get(pod.labels.get("app", ""))) is not None and pod.ports:
            found.append(Target(job, f"http://{pod.ip}:{pod.ports[0].port}/metrics"))
    return found
