"""The bundle's cross-object checks for the kagent kinds: what kagent's controller would refuse.

Each check reads the whole bundle: an Agent whose ModelConfig, tool server or sub-agent is
missing (kagent reports the Agent not Accepted and runs nothing), agents that call each other
in a cycle (kagent refuses the chain), AccessPolicies that name an Agent or a caller that
does not exist (kagent Enterprise reports them Failed), and a chatbot whose A2A proxy would
reach something other than an Agent. A ServiceAccount is not required for an Agent: kagent
creates one named after it.
"""

from __future__ import annotations

from collections.abc import Iterator

from trustusbank.env import CHATBOT_AGENT, CHATBOT_AGENTS, comma_list
from trustusbank.manifests.kagent.objects import ANY_AGENT, Agent, Index
from trustusbank.manifests.kagent.resolve import resolve
from trustusbank.manifests.manifest import Objects, Problem


def agents_resolve(bundle: Objects) -> Iterator[Problem]:
    """Every Agent's model, system message, tools and sub-agents resolve (see `resolve`)."""
    index = Index.of(bundle.objects)
    for agent in index.agents.values():
        yield from resolve(index, agent)[1]


def agent_cycles(bundle: Objects) -> Iterator[Problem]:
    """Agents that reach themselves through their Agent tools; reported once per cycle."""
    index = Index.of(bundle.objects)
    reported: set[frozenset[tuple[str, str]]] = set()
    for start in index.agents.values():
        cycle = _cycle_from(index, start)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        names = " -> ".join(f"{ns}/{name}" for ns, name in [*cycle, cycle[0]])
        tool = next(
            t for t in start.agent_tools if (t.namespace or start.namespace, t.name) == cycle[1 % len(cycle)]
        )
        path = ("spec", "declarative", "tools", tool.index)
        yield start.manifest.problem(path, f"cycle detected in agent tool chain: {names}")


def _cycle_from(index: Index, start: Agent) -> list[tuple[str, str]] | None:
    """The shortest cycle back to `start` through Agent tools (self-references are reported elsewhere)."""
    home = (start.namespace, start.name)
    paths: list[list[tuple[str, str]]] = [[home]]
    seen = {home}
    while paths:
        path = paths.pop(0)
        agent = index.agents.get(path[-1])
        if agent is None:
            continue
        for tool in agent.agent_tools:
            step = (tool.namespace or agent.namespace, tool.name)
            if step == home and len(path) > 1:
                return path
            if step not in seen:
                seen.add(step)
                paths.append([*path, step])
    return None


def access_policy_references(bundle: Objects) -> Iterator[Problem]:
    """An AccessPolicy's target and its Agent and ServiceAccount subjects exist."""
    index = Index.of(bundle.objects)
    for policy in index.access_policies:
        manifest = policy.manifest
        target = (policy.namespace, policy.target_name)
        if policy.target_kind == "Agent" and policy.target_name != ANY_AGENT and target not in index.agents:
            message = f"targetRef names Agent {policy.target_name!r}, which is not in {policy.namespace!r}"
            yield manifest.problem(("spec", "targetRef", "name"), message)
        for subject in policy.subjects:
            key = (subject.namespace, subject.name)
            path = ("spec", "from", "subjects", subject.index)
            if subject.kind == "Agent" and key not in index.agents:
                yield manifest.problem(
                    path, f"subject Agent {subject.namespace}/{subject.name} is not in the bundle"
                )
            # kagent creates the ServiceAccount an Agent runs as, so an agent's name is one too.
            if (
                subject.kind == "ServiceAccount"
                and key not in index.service_accounts
                and key not in index.agents
            ):
                message = f"subject ServiceAccount {subject.namespace}/{subject.name} is not in the bundle"
                yield manifest.problem(path, message)


def chatbot_agents_declared(bundle: Objects) -> Iterator[Problem]:
    """The agents a chatbot's public A2A proxy reaches (its page's and the listed ones) are Agents.

    The proxy forwards to `<name>.<namespace>` as told; a Service that is no Agent (an MCP
    server, the alert evaluator) in that list would put it one request from the internet.
    """
    index = Index.of(bundle.objects)
    for manifest in bundle.objects:
        if manifest.kind != "Deployment":
            continue
        containers = ((manifest.body.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c, container in enumerate(containers.get("containers") or []):
            for e, entry in enumerate(container.get("env") or []):
                if entry.get("name") not in (CHATBOT_AGENT.name, CHATBOT_AGENTS.name):
                    continue
                path = ("spec", "template", "spec", "containers", c, "env", e, "value")
                for ref in comma_list(str(entry.get("value") or "")) or ("",):
                    namespace, _, name = ref.partition("/")
                    if (namespace, name) not in index.agents:
                        message = f"{entry['name']} names {ref!r}, which is not an Agent of the bundle"
                        yield manifest.problem(path, message)
