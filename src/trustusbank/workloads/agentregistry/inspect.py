"""List a build's tools in-process through a real MCP client, as a registry scan would."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp import Client
from mcp.server.mcpserver import MCPServer

if TYPE_CHECKING:
    from trustusbank.workloads.entrypoints import Workload


async def build_tools(workload: Workload, variant: str) -> list[Any]:
    """List the build's tools in-process, over the SDK's in-memory transport."""
    with tempfile.TemporaryDirectory(prefix="trustusbank-inspect-") as scratch:
        server = workload.build(variant, db=Path(scratch) / "inspect.sqlite3")
        if not isinstance(server, MCPServer):
            raise TypeError(f"{workload.name} is not an MCP server")
        async with Client(server) as client:
            return list((await client.list_tools()).tools)
