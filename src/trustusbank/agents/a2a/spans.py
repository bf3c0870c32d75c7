"""GenAI span names and attributes, as the OpenTelemetry semantic conventions spell them.

The acceptance tests and the evidence trail read these attributes from recorded
spans (which tool ran, with which arguments, what came back), so they are a
contract: one place names them. `mcp.server.name`, `url.full` and
`trustusbank.tool.is_error` are ours, added because "which server answered" is the
question a rug pull raises.
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
