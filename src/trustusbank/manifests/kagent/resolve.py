"""An Agent and everything it names, resolved into the `AgentSpec` the agent runtime reads.

This is the reading kagent's controller does before it writes an agent's config: the
ModelConfig (in the Agent's namespace), each tool's RemoteMCPServer or Agent (in the tool's
namespace, else the Agent's, and only across namespaces when the target's
`allowedNamespaces` admits the Agent's), the system message (inline or from a ConfigMap or
Secret key), and the AccessPolicies that guard the agent. Everything that cannot be resolved
is a problem at the line that names it; the bundle check reports the same problems.

Model mapping for the runtime's two wire formats: Anthropic -> "anthropic"; OpenAI ->
"openai" (with `openAI.baseUrl` for any OpenAI-compatible server, such as the scripted
model); Ollama -> "openai" at `<ollama.host>/v1`, Ollama's OpenAI-compatible API (kagent's
own runtime uses Ollama's native API; the difference is the wire, not the model).
"""

from __future__ import annotations

from dataclasses import dataclass

from trustusbank.manifests.kagent.access import rules_for
from trustusbank.manifests.kagent.objects import (
    Agent,
    AgentTool,
    AllowedNamespaces,
    Index,
    McpServerTool,
    ModelConfig,
    RemoteMCPServer,
    ValueSource,
    agent_url,
)
from trustusbank.manifests.kagent.spec import AgentSpec, McpServerSpec, ModelSpec, Provider, SubAgentSpec
from trustusbank.manifests.manifest import JsonPath, Manifest, Problem

DEFAULT_OLLAMA_HOST = "http://localhost:11434"
DEFAULT_MCP_TIMEOUT_SECONDS = 30.0


def model_spec(config: ModelConfig) -> ModelSpec:
    """The runtime's view of a ModelConfig; ValueError for a provider it does not speak."""
    provider: Provider
    if config.provider == "Anthropic":
        provider, base_url = "anthropic", config.base_url
    elif config.provider == "OpenAI":
        provider, base_url = "openai", config.base_url
    elif config.provider == "Ollama":
        provider, base_url = "openai", (config.ollama_host or DEFAULT_OLLAMA_HOST).rstrip("/") + "/v1"
    else:
        raise ValueError(f"ModelConfig {config.ref}: provider {config.provider!r} is not supported")
    return ModelSpec(
        config=config.ref,
        provider=provider,
        model=config.model,
        base_url=base_url,
        api_key_secret=config.api_key_secret,
        api_key_secret_key=config.api_key_secret_key,
        max_tokens=config.max_tokens or ModelSpec.max_tokens,
        temperature=float(config.temperature) if config.temperature is not None else None,
    )


@dataclass(frozen=True)
class ApiKey:
    """The model key as kagent hands it to the pod: an environment variable read from a Secret key."""

    env: str
    value: str


def api_key(index: Index, config: ModelConfig) -> ApiKey | None:
    """The key from the ModelConfig's Secret when the bundle has it (else the pod's env must supply it)."""
    if config.api_key_secret is None or config.api_key_secret_key is None:
        return None
    secret = index.secrets.get((config.namespace, config.api_key_secret))
    value = secret.text(config.api_key_secret_key) if secret is not None else None
    return None if value is None else ApiKey(config.api_key_secret_key, value)


def resolve(index: Index, agent: Agent) -> tuple[AgentSpec | None, list[Problem]]:
    """The agent's spec, or None with every problem found."""
    resolver = _Resolver(index, agent)
    spec = resolver.spec()
    return (spec if not resolver.problems else None), resolver.problems


class _Resolver:
    def __init__(self, index: Index, agent: Agent) -> None:
        self.index = index
        self.agent = agent
        self.problems: list[Problem] = []

    def problem(self, path: JsonPath, message: str, manifest: Manifest | None = None) -> None:
        self.problems.append((manifest or self.agent.manifest).problem(path, message))

    def spec(self) -> AgentSpec | None:
        agent = self.agent
        if agent.type != "Declarative":
            self.problem(("spec", "type"), f"only Declarative agents can be served, not {agent.type}")
            return None
        model = self._model()
        system_message = self._system_message()
        servers = [s for tool in agent.mcp_tools if (s := self._mcp_server(tool)) is not None]
        agents = [a for tool in agent.agent_tools if (a := self._sub_agent(tool)) is not None]
        access, enforced = rules_for(self.index.access_policies, agent.namespace, agent.name)
        if model is None or system_message is None or self.problems:
            return None
        extra: dict[str, object] = {}
        if agent.stream:
            extra["stream"] = True
        if agent.a2a_skills:
            extra["a2a_skills"] = [dict(s) for s in agent.a2a_skills]
        return AgentSpec(
            name=agent.name,
            namespace=agent.namespace,
            description=agent.description,
            system_message=system_message,
            model=model,
            mcp_servers=tuple(servers),
            sub_agents=tuple(agents),
            access=access,
            access_enforced=enforced,
            extra=extra,
        )

    def _model(self) -> ModelSpec | None:
        agent = self.agent
        config = self.index.model_configs.get((agent.namespace, agent.model_config))
        path = ("spec", "declarative", "modelConfig")
        if config is None:
            self.problem(
                path, f"modelConfig {agent.model_config!r} names no ModelConfig in {agent.namespace!r}"
            )
            return None
        try:
            spec = model_spec(config)
        except ValueError as error:
            self.problem(path, str(error))
            return None
        secret = self.index.secrets.get((config.namespace, config.api_key_secret or ""))
        key = config.api_key_secret_key
        if secret is not None and key is not None and key not in secret.data:
            message = f"apiKeySecretKey {key!r} is not a key of Secret {secret.namespace}/{secret.name}"
            self.problem(("spec", "apiKeySecretKey"), message, config.manifest)
        return spec

    def _system_message(self) -> str | None:
        source = self.agent.system_message_from
        if source is None:
            return self.agent.system_message
        value = self._value(source)
        if value is None:
            where = f"{source.type} {self.agent.namespace}/{source.name}"
            message = f"systemMessageFrom: {where} is not in the bundle or has no key {source.key!r}"
            self.problem(("spec", "declarative", "systemMessageFrom"), message)
        return value

    def _value(self, source: ValueSource) -> str | None:
        key = (self.agent.namespace, source.name)
        if source.type == "ConfigMap":
            config_map = self.index.config_maps.get(key)
            return config_map.data.get(source.key) if config_map is not None else None
        secret = self.index.secrets.get(key)
        return secret.text(source.key) if secret is not None else None

    def _tool_path(self, index: int) -> JsonPath:
        return ("spec", "declarative", "tools", index)

    def _mcp_server(self, tool: McpServerTool) -> McpServerSpec | None:
        namespace = tool.namespace or self.agent.namespace
        path = (*self._tool_path(tool.index), "mcpServer")
        if tool.kind != "RemoteMCPServer":
            self.problem(path, f"tool server {tool.name!r}: only RemoteMCPServer tool servers can be used")
            return None
        server = self.index.remote_mcp_servers.get((namespace, tool.name))
        if server is None:
            self.problem((*path, "name"), f"RemoteMCPServer {namespace}/{tool.name} is not in the bundle")
            return None
        if not self._admits(server.allowed_namespaces, server.namespace):
            self.problem(path, self._cross_namespace("RemoteMCPServer", server))
            return None
        return McpServerSpec(
            name=server.name,
            url=server.url,
            tool_names=tool.tool_names,
            timeout_seconds=server.timeout_seconds or DEFAULT_MCP_TIMEOUT_SECONDS,
        )

    def _sub_agent(self, tool: AgentTool) -> SubAgentSpec | None:
        namespace = tool.namespace or self.agent.namespace
        path = (*self._tool_path(tool.index), "agent")
        if (namespace, tool.name) == (self.agent.namespace, self.agent.name):
            self.problem(path, "agent tool cannot be used to reference itself")
            return None
        target = self.index.agents.get((namespace, tool.name))
        if target is None:
            self.problem((*path, "name"), f"Agent {namespace}/{tool.name} is not in the bundle")
            return None
        if not self._admits(target.allowed_namespaces, target.namespace):
            self.problem(path, self._cross_namespace("Agent", target))
            return None
        return SubAgentSpec(
            name=target.name,
            namespace=target.namespace,
            url=agent_url(target.namespace, target.name),
            description=target.description,
        )

    def _admits(self, allowed: AllowedNamespaces, target_namespace: str) -> bool:
        namespace = self.agent.namespace
        return allowed.allows(namespace, target_namespace, self.index.labels_of(namespace))

    def _cross_namespace(self, kind: str, target: Agent | RemoteMCPServer) -> str:
        return (
            f"{kind} {target.ref} does not admit references from namespace {self.agent.namespace!r} "
            "(set its spec.allowedNamespaces)"
        )
