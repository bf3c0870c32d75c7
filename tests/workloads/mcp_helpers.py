"""Talk to a running MCP workload with the SDK's own client, in either protocol."""

from __future__ import annotations

from typing import Any

from mcp import Client

# The stateless 2026-07-28 protocol and the 2025-11-25 session protocol.
MODES = ["2026-07-28", "legacy"]


async def call(url: str, tool: str, arguments: dict[str, Any], mode: str = "auto") -> Any:
    async with Client(f"{url}/mcp", mode=mode) as client:
        return await client.call_tool(tool, arguments)


async def list_tools(url: str, mode: str = "auto") -> list[Any]:
    async with Client(f"{url}/mcp", mode=mode) as client:
        return list((await client.list_tools()).tools)


def error_text(result: Any) -> str:
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return " ".join(block.text for block in result.content)
