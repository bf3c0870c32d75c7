"""The tool list a build advertises, and a hash of it, read through a real MCP client.

The hash is over canonical JSON of what `tools/list` returns, so it changes when
a tool's name, description or schemas change, and for nothing else.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer

from trustusbank.workloads.registry import Workload


def canonical_tools(tools: list[Any]) -> list[dict[str, Any]]:
    dumped = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    return sorted(dumped, key=lambda t: t["name"])


def tool_list_hash(tools: list[Any]) -> str:
    blob = json.dumps(canonical_tools(tools), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"sha256:{hashlib.sha256(blob.encode()).hexdigest()}"


async def build_tools(workload: Workload, variant: str) -> list[Any]:
    """List the build's tools in-process, over the SDK's in-memory transport."""
    with tempfile.TemporaryDirectory(prefix="trustusbank-inspect-") as scratch:
        server = workload.build(variant, db=Path(scratch) / "inspect.sqlite3")
        if not isinstance(server, MCPServer):
            raise TypeError(f"{workload.name} is not an MCP server")
        async with Client(server) as client:
            return list((await client.list_tools()).tools)
