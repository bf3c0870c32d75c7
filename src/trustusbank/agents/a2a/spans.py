"""GenAI span names and attributes, as the OpenTelemetry semantic conventions spell them.

The acceptance tests and the evidence trail read these attributes from recorded
spans (which tool ran, with which arguments, what came back), so they are a
contract: one place names them. `mcp.server.name`, `url.full` and
`trustusbank.tool.is_error` are ours, added because "which server answered" is the
question a rug pull raises. The run's span also carries the customer's message and the
answer (the conventions' opt-in `gen_ai.input.messages` / `gen_ai.output.messages`): the
agent keeps its sessions in memory only, so they are how the operator's console shows a
session's messages.
"""

from __future__ import annotations

import json
from typing import Any

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the older name of gen_ai.provider.name, still read by many backends
AGENT_NAME = "gen_ai.agent.name"
AGENT_DESCRIPTION = "gen_ai.agent.description"
CONVERSATION_ID = "gen_ai.conversation.id"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
MCP_SERVER = "mcp.server.name"
URL_FULL = "url.full"
TOOL_IS_ERROR = "trustusbank.tool.is_error"
AGENT_REF = "trustusbank.agent.ref"
STOP_REASON = "trustusbank.agent.stop_reason"
ERROR_TYPE = "error.type"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"

INVOKE_AGENT = "invoke_agent"
CHAT = "chat"
EXECUTE_TOOL = "execute_tool"
TOOL_TYPE_MCP = "extension"  # a tool an external service executes
TOOL_TYPE_AGENT = "agent"

MAX_ATTRIBUTE_CHARS = 8192


def truncate(text: str, limit: int = MAX_ATTRIBUTE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [truncated, {len(text)} chars]"


def as_json(value: Any) -> str:
    return truncate(json.dumps(value, sort_keys=True, default=str))


def text_message(role: str, text: str, finish_reason: str | None = None) -> str:
    """One text message in the conventions' JSON shape (a list of {role, parts}); the text is truncated,
    never the JSON around it, so the attribute always parses."""
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": truncate(text)}]}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return json.dumps([message])
