"""The waypoint's side of the guard's wire, for tests: real HTTP to the served app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.serving import serving
from trustusbank.mesh.guard.app import create_app

BOT = "spiffe://cluster.local/ns/trustusbank-bank-agents/sa/support-bot"
TRIAGE = "spiffe://cluster.local/ns/trustusbank-bank-agents/sa/triage-bot"


class Guard:
    """One served guard app: `request`/`response` speak the contract, `evidence` reads its log."""

    def __init__(self, http: httpx.AsyncClient, log: Path) -> None:
        self.http, self.log = http, log
        self._ids = 0

    def _id(self) -> int:
        self._ids += 1
        return self._ids

    async def post(self, path: str, body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.http.post(path, content=content, headers={"content-type": "application/json"})

    async def decide(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.post(path, body)
        assert answer.status_code == 200, answer.text
        decided: dict[str, Any] = answer.json()
        return decided

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": self._id(),
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }

    async def request(
        self, backend: str, tool: str, arguments: dict[str, Any], caller: str = BOT, session: str = "s1"
    ) -> dict[str, Any]:
        body = {
            "backend": backend,
            "caller": caller,
            "session": session,
            "message": self.call(tool, arguments),
        }
        return await self.decide("/request", body)

    async def listed(self, backend: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
        request = {"jsonrpc": "2.0", "id": self._id(), "method": "tools/list", "params": {}}
        response = {"jsonrpc": "2.0", "id": request["id"], "result": {"tools": tools}}
        body = {"backend": backend, "caller": BOT, "session": "s1", "request": request, "response": response}
        return await self.decide("/response", body)

    async def result(
        self,
        backend: str,
        tool: str,
        result: dict[str, Any],
        caller: str = BOT,
        session: str = "s1",
        arguments: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request = self.call(tool, arguments or {})
        response = {"jsonrpc": "2.0", "id": request["id"], "result": result}
        body = {
            "backend": backend,
            "caller": caller,
            "session": session,
            "request": request,
            "response": response,
        }
        return await self.decide("/response", body)

    def evidence(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    async def metric(self, name: str, **labels: str) -> float:
        """One sample's value from GET /metrics (0 if the series does not exist yet)."""
        text = (await self.http.get("/metrics")).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + "{"):
                series, value = line.rsplit(" ", 1)
                found = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
                if found == wanted:
                    return float(value)
        return 0.0


@asynccontextmanager
async def guard_at(directory: Path, **limits: Any) -> AsyncIterator[Guard]:
    """The guard app served on 127.0.0.1 with its pins DB and evidence log in `directory`."""
    log = directory / "logs" / "mcp-guard.jsonl"
    async with (
        serving(create_app(directory / "pins.sqlite3", log, **limits)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield Guard(http, log)


def tool(name: str, description: str, **properties: str) -> dict[str, Any]:
    """A tools/list entry as the MCP SDK lists it."""
    return {
        "name": name,
        "description": description,
        "inputSchema": {
            "type": "object",
            "properties": {p: {"type": kind} for p, kind in properties.items()},
            "required": sorted(properties),
        },
    }


def text_result(*texts: str, structured: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": t} for t in texts], "isError": False}
    if structured is not None:
        result["structuredContent"] = structured
    return result
