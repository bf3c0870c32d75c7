"""What a cluster would refuse in a kagent Agent, ModelConfig or RemoteMCPServer, or in a kagent
Enterprise AccessPolicy, and what the embedded runtime cannot honour, said per document.

Field names follow kagent's Go types (`go/api/v1alpha2`: agent_types.go, modelconfig_types.go,
remotemcpserver_types.go, common_types.go in kagent-dev/kagent) and the checks repeat their CEL
rules with kagent's messages. A real field the embedded runtime does not implement is marked
*unsupported* in the schema (`x-unsupported`, as for the waypoint kinds): it is named as such
rather than "unknown field", and it is an error, never skipped. The AccessPolicy schema
(policy.kagent-enterprise.solo.io/v1alpha1) has no public Go types; its fields are the ones
kagent Enterprise's examples and the seed use: `action`, `targetRef{kind, name, tools}`,
`from.subjects[]{kind, name, namespace}`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from trustusbank.manifests.kagent.objects import duration_seconds
from trustusbank.manifests.manifest import JsonPath
from trustusbank.manifests.schema import (
    FieldError,
    array_schema,
    check_spec,
    integer_schema,
    map_schema,
    object_schema,
    string_schema,
    strings_schema,
)

_NOT_EMBEDDED = "kagent has this field, the embedded runtime does not implement it"

PROVIDERS = (
    "Anthropic",
    "OpenAI",
    "AzureOpenAI",
    "Ollama",
    "Gemini",
    "GeminiVertexAI",
    "AnthropicVertexAI",
    "Bedrock",
    "SAPAICore",
    "Foundry",
)
# The ModelConfig block each provider reads; kagent's CEL refuses a block for another provider.
PROVIDER_BLOCKS = {
    "OpenAI": "openAI",
    "Anthropic": "anthropic",
    "AzureOpenAI": "azureOpenAI",
    "Ollama": "ollama",
    "Gemini": "gemini",
    "GeminiVertexAI": "geminiVertexAI",
    "AnthropicVertexAI": "anthropicVertexAI",
    "Bedrock": "bedrock",
    "SAPAICore": "sapAICore",
    "Foundry": "foundry",
}
EMBEDDED_PROVIDERS = ("OpenAI", "Anthropic", "Ollama")

# Every object here refuses its unsupported fields with this group's sentence; a field that
# needs its own reason is declared with `unsupported(why)`.
_object = functools.partial(object_schema, why=_NOT_EMBEDDED)

_NAME = string_schema(1, 253)
_STRINGS = strings_schema()
_INTEGER = integer_schema()
_BOOLEAN: dict[str, Any] = {"type": "boolean"}
_LABEL_SELECTOR = _object(
    {
        "matchLabels": map_schema(string_schema()),
        "matchExpressions": array_schema(
            _object(
                {
                    "key": string_schema(1),
                    "operator": string_schema(enum=("In", "NotIn", "Exists", "DoesNotExist")),
                    "values": _STRINGS,
                },
                required=("key", "operator"),
            )
        ),
    }
)
_ALLOWED_NAMESPACES = _object(
    {"from": string_schema(enum=("All", "Same", "Selector")), "selector": _LABEL_SELECTOR}
)
_VALUE_SOURCE = _object(
    {
        "type": string_schema(enum=("ConfigMap", "Secret")),
        "name": string_schema(max_length=253),
        "key": string_schema(max_length=253),
    },
    required=("type", "name", "key"),
)

# --- Agent (kagent.dev v1alpha2) ------------------------------------------------------------------

_TYPED_REF = _object(
    {
        "kind": string_schema(),
        "apiGroup": string_schema(),
        "name": _NAME,
        "namespace": string_schema(max_length=63),
    },
    required=("name",),
)
_MCP_SERVER_TOOL = _object(
    {
        "kind": string_schema(),
        "apiGroup": string_schema(),
        "name": _NAME,
        "namespace": string_schema(max_length=63),
        "toolNames": _STRINGS,
    },
    required=("name",),
    unsupported=("allowedHeaders",),
)
_TOOL = _object(
    {"type": string_schema(enum=("McpServer", "Agent")), "mcpServer": _MCP_SERVER_TOOL, "agent": _TYPED_REF},
    required=("type",),
    unsupported=("headersFrom",),
)
_A2A_SKILL = _object(
    {
        "id": string_schema(1),
        "name": string_schema(1),
        "description": string_schema(),
        "tags": _STRINGS,
        "examples": _STRINGS,
        "inputModes": _STRINGS,
        "outputModes": _STRINGS,
    },
    required=("id", "name"),
)
_DECLARATIVE = _object(
    {
        "systemMessage": string_schema(),
        "systemMessageFrom": _VALUE_SOURCE,
        "modelConfig": string_schema(),
        "stream": _BOOLEAN,
        "tools": array_schema(_TOOL, max_items=20),
        "a2aConfig": _object({"skills": array_schema(_A2A_SKILL, 1)}),
    },
    unsupported=("deployment", "executeCodeBlocks"),
)
AGENT_SPEC: dict[str, Any] = _object(
    {
        "type": string_schema(enum=("Declarative", "BYO")),
        "description": string_schema(),
        "declarative": _DECLARATIVE,
        "allowedNamespaces": _ALLOWED_NAMESPACES,
    },
    required=("type",),
    unsupported=("byo", "skills"),
)

# --- ModelConfig (kagent.dev v1alpha2) ------------------------------------------------------------

_OPENAI = _object(
    {"baseUrl": string_schema(), "temperature": string_schema(), "maxTokens": _INTEGER},
    unsupported=(
        "organization",
        "topP",
        "frequencyPenalty",
        "presencePenalty",
        "seed",
        "n",
        "timeout",
        "reasoningEffort",
        "tokenExchange",
    ),
)
_ANTHROPIC = _object(
    {"baseUrl": string_schema(), "maxTokens": _INTEGER, "temperature": string_schema()},
    unsupported=("topP", "topK"),
)
_OLLAMA = _object({"host": string_schema()}, unsupported=("options",))
MODEL_CONFIG_SPEC: dict[str, Any] = _object(
    {
        "model": string_schema(1),
        "provider": string_schema(enum=PROVIDERS),
        "apiKeySecret": string_schema(),
        "apiKeySecretKey": string_schema(),
        "openAI": _OPENAI,
        "anthropic": _ANTHROPIC,
        "ollama": _OLLAMA,
    },
    required=("model",),
    unsupported=(
        "apiKeyPassthrough",
        "defaultHeaders",
        "azureOpenAI",
        "gemini",
        "geminiVertexAI",
        "anthropicVertexAI",
        "bedrock",
        "sapAICore",
        "foundry",
        "tls",
    ),
)

# --- RemoteMCPServer (kagent.dev v1alpha2) --------------------------------------------------------

REMOTE_MCP_SERVER_SPEC: dict[str, Any] = _object(
    {
        "description": string_schema(),
        "protocol": string_schema(enum=("SSE", "STREAMABLE_HTTP")),
        "url": string_schema(1),
        "timeout": string_schema(),
        "terminateOnClose": _BOOLEAN,
        "allowedNamespaces": _ALLOWED_NAMESPACES,
    },
    required=("description", "url"),
    unsupported=("headersFrom", "sseReadTimeout", "tls"),
)

# --- AccessPolicy (policy.kagent-enterprise.solo.io v1alpha1) -------------------------------------

_SUBJECT = _object(
    {
        "kind": string_schema(enum=("ServiceAccount", "Agent", "UserGroup")),
        "name": string_schema(1),
        "namespace": string_schema(max_length=63),
    },
    required=("kind", "name"),
)
ACCESS_POLICY_SPEC: dict[str, Any] = _object(
    {
        "action": string_schema(enum=("ALLOW", "DENY")),
        "targetRef": _object(
            {"kind": string_schema(enum=("Agent", "MCPServer")), "name": string_schema(1), "tools": _STRINGS},
            required=("kind", "name"),
        ),
        "from": _object({"subjects": array_schema(_SUBJECT)}),
    },
    required=("action", "targetRef"),
)


def check_agent(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, AGENT_SPEC, _agent)


def check_model_config(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, MODEL_CONFIG_SPEC, _model_config)


def check_remote_mcp_server(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, REMOTE_MCP_SERVER_SPEC, _remote_mcp_server)


def check_access_policy(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, ACCESS_POLICY_SPEC, _access_policy)


def _agent(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    kind = spec["type"]
    if kind == "BYO":
        yield ("spec", "type"), "not supported: BYO agents (the embedded runtime serves Declarative agents)"
        return
    if "declarative" not in spec:
        message = (
            "declarative must be specified if type is Declarative, or byo must be specified if type is BYO"
        )
        yield ("spec",), message
        return
    declarative = spec["declarative"]
    if "systemMessage" in declarative and "systemMessageFrom" in declarative:
        yield ("spec", "declarative"), "systemMessage and systemMessageFrom are mutually exclusive"
    for index, tool in enumerate(declarative.get("tools") or []):
        yield from _tool(("spec", "declarative", "tools", index), tool)


def _tool(path: JsonPath, tool: Mapping[str, Any]) -> Iterator[FieldError]:
    kind = tool["type"]
    if "mcpServer" in tool and kind != "McpServer":
        yield path, "type.mcpServer must be nil if the type is not McpServer"
    if "mcpServer" not in tool and kind == "McpServer":
        yield path, "type.mcpServer must be specified for McpServer filter.type"
    if "agent" in tool and kind != "Agent":
        yield path, "type.agent must be nil if the type is not Agent"
    if "agent" not in tool and kind == "Agent":
        yield path, "type.agent must be specified for Agent filter.type"
    server = tool.get("mcpServer")
    if kind == "McpServer" and isinstance(server, Mapping):
        group, ref_kind = server.get("apiGroup", ""), server.get("kind", "")
        if not ref_kind:
            message = (
                "mcpServer.kind is empty, which kagent reads as a kagent MCPServer (a server kagent runs), "
                "not a RemoteMCPServer; set apiGroup: kagent.dev and kind: RemoteMCPServer"
            )
            yield (*path, "mcpServer"), message
        elif ref_kind != "RemoteMCPServer" or group not in ("", "kagent.dev"):
            message = (
                f"not supported: a tool server of kind {ref_kind!r} (group {group or 'core'!r}); the "
                "embedded runtime reaches MCP servers through RemoteMCPServer (apiGroup kagent.dev)"
            )
            yield (*path, "mcpServer", "kind"), message
    agent = tool.get("agent")
    wrong = isinstance(agent, Mapping) and (
        agent.get("kind", "Agent") not in ("", "Agent") or agent.get("apiGroup", "") not in ("", "kagent.dev")
    )
    if kind == "Agent" and wrong:
        yield (*path, "agent", "kind"), "an Agent tool must reference an Agent (apiGroup kagent.dev)"


def _model_config(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    provider = spec.get("provider", "OpenAI")
    for other, block in PROVIDER_BLOCKS.items():
        if block in spec and other != provider:
            yield ("spec", block), f"provider.{block} must be nil if the provider is not {other}"
    if "apiKeySecretKey" in spec and "apiKeySecret" not in spec:
        yield ("spec",), "apiKeySecret must be set if apiKeySecretKey is set"
    if "apiKeySecret" in spec and "apiKeySecretKey" not in spec:
        message = (
            "apiKeySecretKey must be set if apiKeySecret is set (except for Bedrock and SAPAICore providers)"
        )
        yield ("spec",), message
    if provider not in EMBEDDED_PROVIDERS:
        message = (
            f"not supported: provider {provider!r}; the embedded runtime speaks the OpenAI and Anthropic "
            "APIs (and Ollama through its OpenAI-compatible /v1)"
        )
        yield ("spec", "provider"), message
    block = PROVIDER_BLOCKS.get(provider, "")
    options = spec.get(block)
    if not isinstance(options, Mapping):
        return
    for key in ("baseUrl", "host"):
        if key in options and not _http_url(options[key]):
            yield ("spec", block, key), f"must be an http:// or https:// URL, got {options[key]!r}"
    if "temperature" in options and not _number(options["temperature"]):
        yield ("spec", block, "temperature"), f"must be a number, got {options['temperature']!r}"
    if "maxTokens" in options and options["maxTokens"] < 1:
        yield ("spec", block, "maxTokens"), "must be at least 1"


def _remote_mcp_server(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    if spec.get("protocol") == "SSE":
        message = (
            "not supported: the SSE protocol; the embedded agents speak streamable HTTP to MCP servers "
            "(protocol: STREAMABLE_HTTP)"
        )
        yield ("spec", "protocol"), message
    if not _http_url(spec["url"]):
        yield ("spec", "url"), f"must be an http:// or https:// URL, got {spec['url']!r}"
    if "timeout" in spec:
        try:
            if duration_seconds(spec["timeout"]) <= 0:
                yield ("spec", "timeout"), "must be positive"
        except ValueError as error:
            yield ("spec", "timeout"), str(error)
    if spec.get("terminateOnClose") is False:
        message = "not supported: terminateOnClose: false (the embedded agents always end their MCP sessions)"
        yield ("spec", "terminateOnClose"), message


def _access_policy(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    target = spec["targetRef"]
    if target["kind"] == "MCPServer":
        message = (
            "not supported: AccessPolicy on a kagent MCPServer (the embedded runtime has no kagent "
            "MCPServer; restrict MCP tools per caller with an AgentgatewayPolicy on the MCP backend)"
        )
        yield ("spec", "targetRef", "kind"), message
    elif "tools" in target:
        yield (
            ("spec", "targetRef", "tools"),
            "tools restricts the tools of an MCPServer target; an Agent has none",
        )
    for index, subject in enumerate((spec.get("from") or {}).get("subjects") or []):
        if subject["kind"] == "Agent" and subject["name"] == "*":
            yield ("spec", "from", "subjects", index, "name"), "a subject names one Agent; '*' is not a name"


def _http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
