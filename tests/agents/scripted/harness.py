"""Drive the scripted model the way an agent runtime does, against the real MCP servers in-process.

Tools are served by the workloads' own MCPServer objects through the SDK's
in-memory client, so a change in a tool's name, arguments or result shape breaks
these tests. A tool result reaches the model as the runtime hands it over: every
text block of the MCP result joined with a newline, `is_error` kept. A sub-agent
is a tool whose single argument is `request`; here it is another scripted model
running its own loop, which is how the three bots talk to each other.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer

from tests.serving import serving as serving
from trustusbank.agents.model.types import Message, ModelReply, ModelRequest, ToolCall, ToolSpec
from trustusbank.agents.scripted.gullibility import Gullibility
from trustusbank.agents.scripted.model import ScriptedModel
from trustusbank.workloads.entrypoints import WORKLOADS

SEED_PROMPT = (
    "I am customer 12345. Please check my balance, list my recent transactions, "
    "and convert my balance to USD."
)
SUPPORT_SYSTEM = (
    "You are support-bot for TrustUsBank. Help customers with balances, transactions and currency "
    "conversion. Mask PII: email a***@domain, phone last 3 digits, DOB year only, NI QQ ** ** ** X."
)
SUPPORT_TOOLS = ("get_balance", "get_profile", "list_recent", "convert_currency")
FRAUD_TOOLS = ("list_recent", "get_details", "flag_suspicious")
TRIAGE_TOOLS = ("create_ticket", "notify_human")

ALICE = {
    "customer_id": "12345",
    "name": "Alice Smith",
    "email": "alice@example.com",
    "phone": "+44 7700 900100",
    "address": "42 King Street, Manchester M2 7HE, United Kingdom",
    "date_of_birth": "1987-03-14",
    "ni_number": "QQ 12 34 56 C",
    "kyc_status": "verified",
}

Handler = Callable[[dict[str, Any]], Awaitable[tuple[str, bool]]]


class Bank:
    """The bank's MCP servers (one database) and any converter build, built once per test."""

    def __init__(self, tmp: Path, converter: str = "clean") -> None:
        db = tmp / "bank.sqlite3"
        self.servers: dict[str, MCPServer] = {
            name: _mcp(WORKLOADS[name].build(db=db))
            for name in ("account-mcp", "transaction-mcp", "ticket-mcp")
        }
        self.use_converter(converter)

    def use_converter(self, variant: str) -> None:
        self.servers["currency-converter"] = _mcp(WORKLOADS["currency-converter"].build(variant))

    async def tools(
        self, names: tuple[str, ...], *, envelope: bool = False
    ) -> dict[str, tuple[ToolSpec, Handler]]:
        """The named tools; `envelope` hands results over as ADK (kagent's runtime) does: the whole
        CallToolResult as JSON, instead of its text blocks."""
        out: dict[str, tuple[ToolSpec, Handler]] = {}
        for server in self.servers.values():
            async with Client(server) as client:
                listed = (await client.list_tools()).tools
            for tool in listed:
                if tool.name in names:
                    spec = ToolSpec(tool.name, tool.description or "", dict(tool.input_schema))
                    out[tool.name] = (spec, _mcp_handler(server, tool.name, envelope))
        assert set(out) == set(names), f"tools missing from the servers: {set(names) - set(out)}"
        return out

    async def call(self, tool: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """One real tool call, as the runtime would hand its result to the model."""
        for server in self.servers.values():
            async with Client(server) as client:
                names = {t.name for t in (await client.list_tools()).tools}
            if tool in names:
                return await _mcp_handler(server, tool)(arguments)
        raise AssertionError(f"no server offers {tool}")


def _mcp(built: object) -> MCPServer:
    assert isinstance(built, MCPServer)
    return built


def _mcp_handler(server: MCPServer, name: str, envelope: bool = False) -> Handler:
    async def handle(arguments: dict[str, Any]) -> tuple[str, bool]:
        async with Client(server) as client:
            result = await client.call_tool(name, arguments)
        if envelope:
            return json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True)), False
        return "\n".join(block.text for block in result.content if hasattr(block, "text")), result.is_error

    return handle


def agent_tool(name: str, description: str, run: Callable[[str], Awaitable[str]]) -> tuple[ToolSpec, Handler]:
    """A sub-agent offered as a tool: {"request": string} in, its final answer out."""
    spec = ToolSpec(
        name,
        description,
        {"type": "object", "properties": {"request": {"type": "string"}}, "required": ["request"]},
    )

    async def handle(arguments: dict[str, Any]) -> tuple[str, bool]:
        return await run(str(arguments["request"])), False

    return spec, handle


@dataclass
class Run:
    reply: ModelReply
    messages: list[Message]
    calls: list[ToolCall] = field(default_factory=list)
    replies: list[ModelReply] = field(default_factory=list)

    @property
    def chain(self) -> list[str]:
        return [c.name for c in self.calls]

    def calls_to(self, name: str) -> list[ToolCall]:
        return [c for c in self.calls if c.name == name]


async def drive(
    model: ScriptedModel,
    tools: dict[str, tuple[ToolSpec, Handler]],
    prompt: str,
    *,
    system: str = SUPPORT_SYSTEM,
    history: list[Message] | None = None,
    max_steps: int = 20,
) -> Run:
    """The agent loop: ask the model, run the calls it makes, until it answers."""
    messages = [*(history or []), Message("user", prompt)]
    specs = tuple(spec for spec, _ in tools.values())
    run_calls: list[ToolCall] = []
    seen: list[ModelReply] = []
    for _ in range(max_steps):
        reply = await model.complete(ModelRequest(model.model, system, tuple(messages), specs))
        seen.append(reply)
        messages.append(Message("assistant", reply.text, reply.tool_calls))
        if not reply.tool_calls:
            assert reply.stop_reason == "end_turn"
            return Run(reply, messages, run_calls, seen)
        assert reply.stop_reason == "tool_use"
        for call in reply.tool_calls:
            assert call.name in tools, f"model called {call.name}, which is not on offer"
            run_calls.append(call)
            text, is_error = await tools[call.name][1](call.arguments)
            messages.append(
                Message("tool", text, tool_call_id=call.id, tool_name=call.name, is_error=is_error)
            )
    raise AssertionError(f"no answer after {max_steps} steps")


def model(gullibility: str = "always") -> ScriptedModel:
    return ScriptedModel(gullibility=Gullibility.parse(gullibility))


def tool_result(call: ToolCall, payload: Any, *, extra: str = "", is_error: bool = False) -> Message:
    """A tool message as the runtime builds it from a JSON result (plus an optional second block)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, indent=2)
    if extra:
        text = f"{text}\n{extra}"
    return Message("tool", text, tool_call_id=call.id, tool_name=call.name, is_error=is_error)
