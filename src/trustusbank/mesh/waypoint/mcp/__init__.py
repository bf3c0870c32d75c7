"""MCP over streamable HTTP as the waypoint judges it: requests parsed exactly as the MCP SDK
server will execute them (`request`, on `strict_json`), and list answers filtered (`lists`)."""

from trustusbank.mesh.waypoint.mcp.lists import LISTS, ItemKind, filter_list, filter_tools_list
from trustusbank.mesh.waypoint.mcp.request import (
    AGENTGATEWAY_METHODS,
    MAX_BODY_DEFAULT,
    McpMessage,
    McpRefused,
    McpRequest,
    jsonrpc_error,
    parse_request,
)
from trustusbank.mesh.waypoint.mcp.strict_json import MAX_DEPTH

__all__ = [
    "AGENTGATEWAY_METHODS",
    "LISTS",
    "MAX_BODY_DEFAULT",
    "MAX_DEPTH",
    "ItemKind",
    "McpMessage",
    "McpRefused",
    "McpRequest",
    "filter_list",
    "filter_tools_list",
    "jsonrpc_error",
    "parse_request",
]
