"""The agent card: what this agent is and where to reach it, derived from its spec.

The URL is the agent's Service (`http://<name>.<ns>.svc.cluster.local:<port>/`), the
address other workloads use and the one the mesh's policies are written for;
`spec.extra["url"]` overrides it (tests, or an agent published elsewhere). Skills
follow the tools the agent was given: one per RemoteMCPServer and one per agent it
may delegate to, so a caller can see what the agent can reach before calling it.
"""

from __future__ import annotations

from a2a.types import a2a_pb2 as a2a
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, TransportProtocol

from trustusbank import __version__
from trustusbank.manifests.kagent.spec import AgentSpec

URL_EXTRA = "url"


def agent_url(spec: AgentSpec) -> str:
    override = spec.extra.get(URL_EXTRA)
    if isinstance(override, str) and override:
        return override
    return f"http://{spec.name}.{spec.namespace}.svc.cluster.local:{spec.port}/"


def skills(spec: AgentSpec) -> list[a2a.AgentSkill]:
    found = []
    for server in spec.mcp_servers:
        tools = ", ".join(server.tool_names) or "every tool it offers"
        found.append(
            a2a.AgentSkill(
                id=f"mcp:{server.name}",
                name=server.name,
                description=f"Uses the MCP server {server.name}: {tools}.",
                tags=["mcp", server.name, *server.tool_names],
            )
        )
    for agent in spec.sub_agents:
        ref = f"{agent.namespace}/{agent.name}"
        found.append(
            a2a.AgentSkill(
                id=f"agent:{ref}",
                name=agent.name,
                description=agent.description or f"Delegates to the agent {ref}.",
                tags=["agent", ref],
            )
        )
    if not found:
        found.append(a2a.AgentSkill(id="chat", name=spec.name, description=spec.description, tags=["chat"]))
    return found


def agent_card(spec: AgentSpec) -> a2a.AgentCard:
    """The card; its one endpoint is listed for A2A 1.0 and for 0.3 (served too, and what kagent's
    own runtime speaks), which also gives the served JSON the 0.3 card's top-level `url`."""
    url = agent_url(spec)
    return a2a.AgentCard(
        name=spec.name,
        description=spec.description or f"kagent Agent {spec.ref}",
        version=__version__,
        supported_interfaces=[
            a2a.AgentInterface(url=url, protocol_binding=TransportProtocol.JSONRPC, protocol_version=version)
            for version in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        ],
        capabilities=a2a.AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain", "application/json"],
        skills=skills(spec),
    )
