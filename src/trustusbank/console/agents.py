"""The cluster's agents as the operator sees them: the pod, the spec kagent resolved, the card it serves.

The spec (tools, sub-agents, model) comes from the manifests in force, resolved as kagent's
controller resolves them; the card is fetched from the agent pod itself, at its app
address, the way a port-forward reaches a pod (straight in, not through the mesh), so the
page shows what the agent really publishes. The card is the pod's word, not ours: it is
size-capped and shown as data.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Pod, Topology
from trustusbank.cluster.watch import load_in_force
from trustusbank.manifests.kagent.controller import MANAGED_BY, agent_spec
from trustusbank.manifests.kagent.objects import Index
from trustusbank.manifests.kagent.spec import AgentSpec
from trustusbank.paths import deploy_dir

CARD_PATH = "/.well-known/agent-card.json"
CARD_TIMEOUT = 3.0
MAX_CARD_BYTES = 256 * 1024


@dataclass
class Agent:
    namespace: str
    name: str
    pod: Pod | None = None
    spec: AgentSpec | None = None
    spec_error: str | None = None
    card: dict[str, Any] | None = None
    card_error: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def deploy_of(files: ClusterFiles) -> Path:
    """The manifests the running cluster was started from (its status names them), else the default."""
    try:
        recorded = json.loads(files.status.read_text(encoding="utf-8")).get("deploy")
    except (OSError, ValueError, AttributeError):
        recorded = None
    return Path(recorded) if isinstance(recorded, str) and Path(recorded).is_dir() else deploy_dir()


def topology_of(files: ClusterFiles) -> Topology | None:
    try:
        return Topology.load(files.topology)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def agent_pods(topology: Topology | None) -> dict[tuple[str, str], Pod]:
    """The pods kagent's controller made for Agents, by (namespace, agent name)."""
    if topology is None:
        return {}
    return {
        (pod.namespace, pod.labels["kagent"]): pod
        for pod in topology.pods
        if pod.labels.get(MANAGED_BY) == "kagent" and pod.labels.get("kagent")
    }


def cluster_agents(files: ClusterFiles) -> list[Agent]:
    """Every Agent in force or running, with its spec (or why it cannot be resolved)."""
    pods = agent_pods(topology_of(files))
    agents = {key: Agent(*key, pod=pod) for key, pod in pods.items()}
    try:
        bundle = load_in_force(deploy_of(files), files)
    except Exception as exc:  # a broken bundle: show the pods, say why their specs are missing
        for agent in agents.values():
            agent.spec_error = f"the manifests in force do not load: {exc}"
        return sorted(agents.values(), key=lambda a: a.ref)
    for key in Index.of(bundle.objects).agents:
        agent = agents.setdefault(key, Agent(*key))
        try:
            agent.spec = agent_spec(bundle, *key)
        except Exception as exc:
            agent.spec_error = str(exc)
    return sorted(agents.values(), key=lambda a: a.ref)


def card_url(pod: Pod, spec: AgentSpec | None) -> str:
    wanted = spec.port if spec is not None else None
    ports = [p.port for p in pod.ports if p.port == wanted] or [p.port for p in pod.ports if p.name == "http"]
    port = (ports or [p.port for p in pod.ports] or [8080])[0]
    return f"http://{pod.app_ip}:{port}{CARD_PATH}"


async def fetch_card(http: httpx.AsyncClient, agent: Agent) -> None:
    """The card the agent's pod serves, or why it could not be read."""
    if agent.pod is None:
        agent.card_error = "no pod runs this agent"
        return
    url = card_url(agent.pod, agent.spec)
    try:
        async with http.stream("GET", url) as response:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_CARD_BYTES:
                    agent.card_error = f"{url}: the card is larger than {MAX_CARD_BYTES} bytes"
                    return
        if response.status_code != 200:
            agent.card_error = f"{url}: HTTP {response.status_code}"
            return
        card = json.loads(body)
    except (httpx.HTTPError, ValueError) as exc:
        agent.card_error = f"{url}: {type(exc).__name__}: {exc}"
        return
    if not isinstance(card, dict):
        agent.card_error = f"{url}: the card is not a JSON object"
        return
    agent.card = card


async def with_cards(agents: list[Agent]) -> list[Agent]:
    async with httpx.AsyncClient(trust_env=False, timeout=CARD_TIMEOUT) as http:
        await asyncio.gather(*(fetch_card(http, agent) for agent in agents))
    return agents
