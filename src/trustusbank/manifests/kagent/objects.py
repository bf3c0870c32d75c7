"""Typed views of kagent's Agent, ModelConfig and RemoteMCPServer, and of kagent Enterprise's
AccessPolicy, plus an `Index` of everything an agent's resolution looks up.

Defaults are kagent's (`go/api/v1alpha2` in kagent-dev/kagent): an Agent without
`modelConfig` uses `default-model-config`; a ModelConfig without `provider` is OpenAI; a
RemoteMCPServer without `protocol` is STREAMABLE_HTTP; a tool reference without a namespace
means the Agent's own; cross-namespace references need the target's `allowedNamespaces`.
The views read only what the schema in `kinds` admits, and never raise on a document that
schema accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trustusbank.manifests.core import ConfigMap, LabelSelector, Secret, ServiceAccount
from trustusbank.manifests.manifest import Manifest, field_at, namespace_of

KAGENT_GROUP = "kagent.dev"
KAGENT_API = "kagent.dev/v1alpha2"
ACCESS_GROUP = "policy.kagent-enterprise.solo.io"
ACCESS_API = "policy.kagent-enterprise.solo.io/v1alpha1"
WAYPOINT_LABEL = "kagent.solo.io/waypoint"
DEFAULT_MODEL_CONFIG = "default-model-config"
ANY_AGENT = "*"
CLUSTER_DOMAIN = "cluster.local"
AGENT_PORT = 8080

AccessAction = Literal["ALLOW", "DENY"]


def principal(namespace: str, service_account: str) -> str:
    """The SPIFFE principal (without `spiffe://`) Istio gives a workload, as AuthorizationPolicy spells it."""
    return f"{CLUSTER_DOMAIN}/ns/{namespace}/sa/{service_account}"


def agent_url(namespace: str, name: str) -> str:
    """Where an agent's A2A server is reached: the Service kagent creates, named after the agent."""
    return f"http://{name}.{namespace}.svc.{CLUSTER_DOMAIN}:{AGENT_PORT}"


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """A Go duration (`metav1.Duration`: "30s", "1m30s", "500ms") in seconds; ValueError otherwise."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    parts = list(_DURATION_PART.finditer(body))
    if not parts or "".join(p.group(0) for p in parts) != body:
        raise ValueError(f"not a duration: {text!r} (use Go's form, e.g. 30s, 1m30s, 500ms)")
    seconds = sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2)] for p in parts)
    return -seconds if text.startswith("-") else seconds


@dataclass(frozen=True)
class AllowedNamespaces:
    """Who may reference this object from another namespace; kagent's default is the same namespace only."""

    source: str = "Same"  # All | Same | Selector
    selector: LabelSelector | None = None

    def allows(self, from_namespace: str, own_namespace: str, namespace_labels: Mapping[str, str]) -> bool:
        if from_namespace == own_namespace or self.source == "All":
            return True
        if self.source == "Selector" and self.selector is not None:
            return self.selector.matches(namespace_labels)
        return False

    @classmethod
    def from_body(cls, body: Any) -> AllowedNamespaces:
        if not isinstance(body, Mapping):
            return cls()
        selector = body.get("selector")
        return cls(
            str(body.get("from") or "Same"),
            LabelSelector.from_body(selector) if isinstance(selector, Mapping) else None,
        )


@dataclass(frozen=True)
class ValueSource:
    """A value read from a ConfigMap or Secret key in the referencing object's namespace."""

    type: str  # ConfigMap | Secret
    name: str
    key: str


@dataclass(frozen=True)
class McpServerTool:
    index: int  # position in spec.declarative.tools, for messages
    name: str
    namespace: str | None
    api_group: str
    kind: str
    tool_names: tuple[str, ...]


@dataclass(frozen=True)
class AgentTool:
    index: int
    name: str
    namespace: str | None


@dataclass(frozen=True)
class Agent:
    name: str
    namespace: str
    type: str
    description: str
    system_message: str
    system_message_from: ValueSource | None
    model_config: str
    stream: bool
    mcp_tools: tuple[McpServerTool, ...]
    agent_tools: tuple[AgentTool, ...]
    a2a_skills: tuple[dict[str, Any], ...]
    allowed_namespaces: AllowedNamespaces
    labels: dict[str, str]
    manifest: Manifest = field(repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def service_account(self) -> str:
        """kagent runs the agent as a ServiceAccount named after it (it creates one when missing)."""
        return self.name

    @property
    def principal(self) -> str:
        return principal(self.namespace, self.service_account)

    @property
    def has_waypoint(self) -> bool:
        """kagent Enterprise puts a waypoint in front of an agent (where AccessPolicies are enforced)
        only when the Agent carries this label with the value "true"."""
        return self.labels.get(WAYPOINT_LABEL) == "true"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Agent:
        spec = manifest.body.get("spec") or {}
        declarative = spec.get("declarative") or {}
        mcp_tools: list[McpServerTool] = []
        agent_tools: list[AgentTool] = []
        for index, tool in enumerate(declarative.get("tools") or []):
            if not isinstance(tool, Mapping):
                continue
            if tool.get("type") == "McpServer" and isinstance(tool.get("mcpServer"), Mapping):
                ref = tool["mcpServer"]
                mcp_tools.append(
                    McpServerTool(
                        index,
                        str(ref.get("name") or ""),
                        ref.get("namespace") or None,
                        str(ref.get("apiGroup") or ""),
                        str(ref.get("kind") or ""),
                        tuple(str(t) for t in ref.get("toolNames") or ()),
                    )
                )
            elif tool.get("type") == "Agent" and isinstance(tool.get("agent"), Mapping):
                ref = tool["agent"]
                agent_tools.append(AgentTool(index, str(ref.get("name") or ""), ref.get("namespace") or None))
        source = declarative.get("systemMessageFrom")
        return cls(
            name=manifest.name,
            namespace=namespace_of(manifest),
            type=str(spec.get("type") or "Declarative"),
            description=str(spec.get("description") or ""),
            system_message=str(declarative.get("systemMessage") or ""),
            system_message_from=ValueSource(str(source["type"]), str(source["name"]), str(source["key"]))
            if isinstance(source, Mapping)
            else None,
            model_config=str(declarative.get("modelConfig") or DEFAULT_MODEL_CONFIG),
            stream=bool(declarative.get("stream")),
            mcp_tools=tuple(mcp_tools),
            agent_tools=tuple(agent_tools),
            a2a_skills=tuple(dict(s) for s in field_at(declarative, "a2aConfig", "skills") or ()),
            allowed_namespaces=AllowedNamespaces.from_body(spec.get("allowedNamespaces")),
            labels=dict(manifest.labels),
            manifest=manifest,
        )


@dataclass(frozen=True)
class ModelConfig:
    name: str
    namespace: str
    provider: str
    model: str
    api_key_secret: str | None
    api_key_secret_key: str | None
    base_url: str | None  # openAI.baseUrl / anthropic.baseUrl
    max_tokens: int | None
    temperature: str | None  # kagent keeps it a string; the runtime reads a number
    ollama_host: str | None
    manifest: Manifest = field(repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ModelConfig:
        spec = manifest.body.get("spec") or {}
        provider = str(spec.get("provider") or "OpenAI")
        block = {"OpenAI": "openAI", "Anthropic": "anthropic"}.get(provider)
        options = (spec.get(block) if block else None) or {}
        max_tokens = options.get("maxTokens")
        temperature = options.get("temperature")
        return cls(
            name=manifest.name,
            namespace=namespace_of(manifest),
            provider=provider,
            model=str(spec.get("model") or ""),
            api_key_secret=spec.get("apiKeySecret") or None,
            api_key_secret_key=spec.get("apiKeySecretKey") or None,
            base_url=options.get("baseUrl") or None,
            max_tokens=int(max_tokens) if isinstance(max_tokens, int) else None,
            temperature=str(temperature) if temperature not in (None, "") else None,
            ollama_host=field_at(spec, "ollama", "host") or None,
            manifest=manifest,
        )


@dataclass(frozen=True)
class RemoteMCPServer:
    name: str
    namespace: str
    description: str
    protocol: str
    url: str
    timeout_seconds: float | None
    allowed_namespaces: AllowedNamespaces
    manifest: Manifest = field(repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> RemoteMCPServer:
        spec = manifest.body.get("spec") or {}
        timeout = spec.get("timeout")
        return cls(
            name=manifest.name,
            namespace=namespace_of(manifest),
            description=str(spec.get("description") or ""),
            protocol=str(spec.get("protocol") or "STREAMABLE_HTTP"),
            url=str(spec.get("url") or ""),
            timeout_seconds=duration_seconds(timeout) if isinstance(timeout, str) else None,
            allowed_namespaces=AllowedNamespaces.from_body(spec.get("allowedNamespaces")),
            manifest=manifest,
        )


@dataclass(frozen=True)
class AccessSubject:
    index: int  # position in spec.from.subjects
    kind: str  # ServiceAccount | Agent | UserGroup
    name: str
    namespace: str  # the policy's own when the subject names none (not used for UserGroup)

    @property
    def principal(self) -> str | None:
        """The SPIFFE principal a ServiceAccount or Agent subject stands for (an Agent runs as the
        ServiceAccount named after it); None for a UserGroup, which is a claim of the caller's token."""
        if self.kind in ("ServiceAccount", "Agent"):
            return principal(self.namespace, self.name)
        return None

    def describe(self) -> str:
        if self.kind == "Agent":
            return self.name
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"group {self.name}"


@dataclass(frozen=True)
class AccessPolicy:
    name: str
    namespace: str
    action: AccessAction
    target_kind: str  # Agent | MCPServer
    target_name: str  # an agent's name, or "*" for every agent in the policy's namespace
    tools: tuple[str, ...]
    subjects: tuple[AccessSubject, ...]
    manifest: Manifest = field(repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def baseline(self) -> bool:
        """No subjects: a policy that names no caller (with target "*", the deny-all baseline)."""
        return not self.subjects

    def targets(self, namespace: str, agent: str) -> bool:
        return (
            self.target_kind == "Agent"
            and self.namespace == namespace
            and self.target_name in (agent, ANY_AGENT)
        )

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> AccessPolicy:
        spec = manifest.body.get("spec") or {}
        target = spec.get("targetRef") or {}
        namespace = namespace_of(manifest)
        subjects = tuple(
            AccessSubject(
                index,
                str(s.get("kind") or ""),
                str(s.get("name") or ""),
                str(s.get("namespace") or namespace),
            )
            for index, s in enumerate(field_at(spec, "from", "subjects") or ())
            if isinstance(s, Mapping)
        )
        action: AccessAction = "DENY" if str(spec.get("action") or "").upper() == "DENY" else "ALLOW"
        return cls(
            name=manifest.name,
            namespace=namespace,
            action=action,
            target_kind=str(target.get("kind") or ""),
            target_name=str(target.get("name") or ""),
            tools=tuple(str(t) for t in target.get("tools") or ()),
            subjects=subjects,
            manifest=manifest,
        )


Key = tuple[str, str]  # (namespace, name)


@dataclass
class Index:
    """Everything an agent's resolution may look up, by (namespace, name)."""

    agents: dict[Key, Agent] = field(default_factory=dict)
    model_configs: dict[Key, ModelConfig] = field(default_factory=dict)
    remote_mcp_servers: dict[Key, RemoteMCPServer] = field(default_factory=dict)
    access_policies: list[AccessPolicy] = field(default_factory=list)
    secrets: dict[Key, Secret] = field(default_factory=dict)
    config_maps: dict[Key, ConfigMap] = field(default_factory=dict)
    service_accounts: dict[Key, ServiceAccount] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, manifests: Iterable[Manifest], *, lenient: bool = False) -> Index:
        """Index the manifests by kind (matched on API group, so any served version counts).

        `lenient` (for the linter, which also reads documents the loader refused) skips a
        document its view cannot read instead of raising.
        """
        index = cls()
        for manifest in manifests:
            try:
                index._add(manifest)
            except (KeyError, TypeError, ValueError, AttributeError):
                if not lenient:
                    raise
        return index

    def _add(self, manifest: Manifest) -> None:
        group = manifest.api_version.rpartition("/")[0]
        key = (namespace_of(manifest), manifest.name)
        kind = (group, manifest.kind)
        if kind == (KAGENT_GROUP, "Agent"):
            self.agents[key] = Agent.from_manifest(manifest)
        elif kind == (KAGENT_GROUP, "ModelConfig"):
            self.model_configs[key] = ModelConfig.from_manifest(manifest)
        elif kind == (KAGENT_GROUP, "RemoteMCPServer"):
            self.remote_mcp_servers[key] = RemoteMCPServer.from_manifest(manifest)
        elif kind == (ACCESS_GROUP, "AccessPolicy"):
            self.access_policies.append(AccessPolicy.from_manifest(manifest))
        elif kind == ("", "Secret"):
            self.secrets[key] = Secret.from_manifest(manifest)
        elif kind == ("", "ConfigMap"):
            self.config_maps[key] = ConfigMap.from_manifest(manifest)
        elif kind == ("", "ServiceAccount"):
            self.service_accounts[key] = ServiceAccount.from_manifest(manifest)
        elif kind == ("", "Namespace"):
            self.namespace_labels[manifest.name] = dict(manifest.labels)

    def labels_of(self, namespace: str) -> dict[str, str]:
        return self.namespace_labels.get(namespace, {})
