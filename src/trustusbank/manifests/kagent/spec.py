"""Everything one agent process needs to run, resolved from the kagent resources.

kagent's controller turns an `Agent` plus the `ModelConfig` and `RemoteMCPServer`s it
names into one config the agent runtime reads at start; `AgentSpec` is that config
here. It is plain JSON so it can travel in a pod's environment or a file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from trustusbank.env import AGENT_SPEC

Provider = Literal["openai", "anthropic"]

SPEC_ENV = AGENT_SPEC.name


@dataclass(frozen=True)
class ModelSpec:
    """A ModelConfig, resolved. `api_key` is filled at start from the Secret or the environment."""

    config: str  # "<namespace>/<name>" of the ModelConfig, for error messages
    provider: Provider
    model: str
    base_url: str | None = None
    api_key_secret: str | None = None  # Secret name
    api_key_secret_key: str | None = None  # key inside the Secret, also the env var we fall back to
    api_key: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None


@dataclass(frozen=True)
class McpServerSpec:
    """A RemoteMCPServer and the tools this agent may use from it (empty = all it lists)."""

    name: str
    url: str
    tool_names: tuple[str, ...] = ()
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class SubAgentSpec:
    """Another Agent offered to this one as a tool; called over A2A at `url`."""

    name: str
    namespace: str
    url: str
    description: str = ""

    @property
    def tool_name(self) -> str:
        """The name the model sees: the agent's name with '-' as '_' (tool names are identifiers)."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class AccessRule:
    """One kagent AccessPolicy that targets this agent, reduced to what the decision needs."""

    policy: str  # "<namespace>/<name>"
    action: Literal["ALLOW", "DENY"]
    # SPIFFE principals ("cluster.local/ns/<ns>/sa/<sa>") the subjects stand for; "*" = anyone
    principals: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentSpec:
    name: str
    namespace: str
    description: str
    system_message: str
    model: ModelSpec
    mcp_servers: tuple[McpServerSpec, ...] = ()
    sub_agents: tuple[SubAgentSpec, ...] = ()
    access: tuple[AccessRule, ...] = ()
    access_enforced: bool = False  # True once any AccessPolicy targets this agent or "*"
    max_steps: int = 12
    step_timeout_seconds: float = 60.0
    port: int = 8080
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AgentSpec:
        raw = json.loads(text)
        return cls(
            **{
                **raw,
                "model": ModelSpec(**raw["model"]),
                "mcp_servers": tuple(
                    McpServerSpec(**{**m, "tool_names": tuple(m["tool_names"])}) for m in raw["mcp_servers"]
                ),
                "sub_agents": tuple(SubAgentSpec(**s) for s in raw["sub_agents"]),
                "access": tuple(
                    AccessRule(
                        **{**a, "principals": tuple(a["principals"]), "user_groups": tuple(a["user_groups"])}
                    )
                    for a in raw["access"]
                ),
            }
        )
