"""The conversation every model client and the scripted model share, whatever the wire.

OpenAI and Anthropic spell the same ideas differently (tool_calls vs tool_use,
role "tool" vs a tool_result block); the agent loop works on these types only,
so a provider is one translation module and nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from trustusbank.errors import ConfigError, UnavailableError

Role = Literal["user", "assistant", "tool"]
StopReason = Literal["end_turn", "tool_use", "max_tokens"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: its name, what it is for, and its JSON Schema input."""

    name: str
    description: str
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One turn. `assistant` turns may carry tool calls; `tool` turns answer one call by id."""

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ModelRequest:
    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 1024
    temperature: float | None = None


@dataclass(frozen=True)
class ModelReply:
    text: str
    tool_calls: tuple[ToolCall, ...]
    model: str
    stop_reason: StopReason
    usage: Usage = Usage()
    response_id: str = ""


class ModelError(UnavailableError):
    """The model could not answer (transport, HTTP or protocol error); the message says which."""


class ModelConfigError(ModelError, ConfigError):
    """The model is not usable as configured (no API key, no base URL); raised at start-up."""


class ModelClient(Protocol):
    """What the agent loop needs from a model, whichever provider answers."""

    provider: str  # the `gen_ai.system` value: "openai", "anthropic"
    model: str

    async def complete(self, request: ModelRequest) -> ModelReply: ...

    async def aclose(self) -> None: ...
