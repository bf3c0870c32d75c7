"""The agent's MCP tools: listed for each request, called over streamable HTTP.

Calls go out through whatever `ALL_PROXY` names (`trust_env`), which in the embedded
mesh is the node's ztunnel, so they reach the server through the waypoint and its
policies exactly as kagent's calls do; the W3C trace context of the calling span is
added to each request as it is sent, so the waypoint's span continues the agent's
trace. Connections to a server are pooled: through the mesh a new connection costs
a SOCKS handshake and an HBONE stream set-up, which dominated a tool call when each
call opened its own.

Whatever goes wrong with a call (the tool's own error, a gateway's 403, a JSON-RPC
error, a dead connection) comes back as an error *result*: the model is told what
happened and decides what to say, as it would be with any provider's tool loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from trustusbank.agents.model.types import ToolSpec
from trustusbank.http_server import CLIENT_POOL
from trustusbank.manifests.kagent.spec import McpServerSpec
from trustusbank.telemetry.tracing import inject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class McpTool:
    server: McpServerSpec
    spec: ToolSpec


@dataclass(frozen=True)
class ToolOutcome:
    text: str
    is_error: bool


@dataclass
class _HttpErrors:
    """Non-2xx answers seen during one call: the MCP client keeps the body, not the status."""

    seen: list[str] = field(default_factory=list)


# The call in progress in this task; hooks on the shared client report into it.
_CALL_ERRORS: ContextVar[_HttpErrors | None] = ContextVar("mcp_call_errors", default=None)


async def _add_trace_context(request: httpx2.Request) -> None:
    request.headers.update(inject())


async def _record_error(response: httpx2.Response) -> None:
    errors = _CALL_ERRORS.get()
    if errors is not None and response.status_code >= 400:
        errors.seen.append(f"HTTP {response.status_code} from {response.request.url}")


def _http_client(server: McpServerSpec) -> httpx2.AsyncClient:
    """Kept for the agent's life; its idle connections to the waypoint are given up before the
    waypoint drops them (`http_server.CLIENT_POOL` says why), or a tools/list loses the race."""
    return httpx2.AsyncClient(
        trust_env=True,
        timeout=httpx2.Timeout(server.timeout_seconds),
        limits=httpx2.Limits(**CLIENT_POOL),
        event_hooks={"request": [_add_trace_context], "response": [_record_error]},
    )


def describe_error(exc: BaseException) -> str:
    """One line for an exception, task-group wrappers unwrapped."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe_error(inner) for inner in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return text


def result_text(content: Sequence[Any], structured: Any) -> str:
    """The text the model sees: every text block, else the structured content as JSON."""
    texts = [block.text for block in content if getattr(block, "type", None) == "text"]
    if texts:
        return "\n".join(texts)
    if structured is not None:
        return json.dumps(structured, sort_keys=True)
    return ""


class McpToolbox:
    def __init__(self, servers: Sequence[McpServerSpec]) -> None:
        self.servers = tuple(servers)
        self._http: dict[str, httpx2.AsyncClient] = {}

    @asynccontextmanager
    async def _connect(self, server: McpServerSpec, errors: _HttpErrors) -> AsyncIterator[Client]:
        http = self._http.get(server.name)
        if http is None:
            http = self._http[server.name] = _http_client(server)
        token = _CALL_ERRORS.set(errors)
        try:
            async with Client(streamable_http_client(server.url, http_client=http)) as client:
                yield client
        finally:
            _CALL_ERRORS.reset(token)

    async def aclose(self) -> None:
        clients, self._http = list(self._http.values()), {}
        for http in clients:
            await http.aclose()

    async def tools(self) -> list[McpTool]:
        """Every tool the agent may use, listed afresh for each request, servers in parallel.

        Listing per request is what kagent's runtime does, and it matters here: a server's
        tools can change under the same URL (a new build behind the same tag), and the model
        must see the schema the server offers now. A server that cannot be listed is left out.
        """
        listed = await asyncio.gather(*(self._list(s) for s in self.servers), return_exceptions=True)
        tools: list[McpTool] = []
        seen: dict[str, str] = {}
        for server, found in zip(self.servers, listed, strict=True):
            if isinstance(found, BaseException):
                log.warning(
                    "cannot list tools of %s at %s: %s", server.name, server.url, describe_error(found)
                )
                continue
            for tool in found:
                if tool.spec.name in seen:
                    log.warning(
                        "tool %s of %s hidden: %s offers one of that name",
                        tool.spec.name,
                        server.name,
                        seen[tool.spec.name],
                    )
                    continue
                seen[tool.spec.name] = server.name
                tools.append(tool)
        return tools

    async def _list(self, server: McpServerSpec) -> tuple[McpTool, ...]:
        errors = _HttpErrors()
        async with self._connect(server, errors) as client:
            listed = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
        wanted = set(server.tool_names)
        missing = wanted - {t.name for t in listed}
        if missing:
            log.warning("%s does not offer %s", server.name, ", ".join(sorted(missing)))
        return tuple(
            McpTool(server, ToolSpec(t.name, t.description or "", dict(t.input_schema)))
            for t in listed
            if not wanted or t.name in wanted
        )

    async def call(self, tool: McpTool, arguments: dict[str, Any]) -> ToolOutcome:
        errors = _HttpErrors()
        try:
            async with self._connect(tool.server, errors) as client:
                result = await client.call_tool(tool.spec.name, arguments)
        except Exception as exc:
            text = describe_error(exc)
            if errors.seen:  # the last refusal is the one that ended the call
                text = f"{text} ({errors.seen[-1]})"
            return ToolOutcome(f"tool {tool.spec.name} on {tool.server.name} failed: {text}", True)
        return ToolOutcome(result_text(result.content, result.structured_content), bool(result.is_error))
