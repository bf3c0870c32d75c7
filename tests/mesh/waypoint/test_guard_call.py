"""The waypoint calls the MCP guard a route's `traffic.extProc` names, and fails closed.

End to end over real sockets: a caller with an SVID reaches the waypoint of `harness` over an
HBONE tunnel; behind it the official SDK's MCP server (`test_mcp_agentgateway.build_server`,
with its recorder noting every JSON-RPC method that reached it); and a fake guard, a Starlette
app on 127.0.0.1 that answers each call as the test says (pass, reject, mask, garbage, an HTTP
error, or never) and records what it was sent. The guard is reached through the waypoint's
upstream pool (its egress, the mesh path on a cluster), as the contract in guard_call says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
import pytest
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.mesh.waypoint.harness import ALICE, MANIFESTS, Waypoint, running
from tests.mesh.waypoint.test_mcp_agentgateway import (
    BANK,
    Recorder,
    build_server,
    legacy_session,
    messages,
    post,
)
from tests.mesh.waypoint.test_mcp_parse import (
    LEGACY,
    SESSION,
    legacy_body,
    legacy_headers,
    modern_body,
    modern_headers,
)
from tests.serving import refused_url
from trustusbank.mesh.waypoint.guard_call import GUARD_TIMEOUT
from trustusbank.mesh.waypoint.proxy import FORBIDDEN, GUARD_UNAVAILABLE

GUARD_HOST = "mcp-guard.shop.svc.cluster.local"
GUARD_POLICY = """\
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: bank-mcp-guard, namespace: shop}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: bank-mcp}]
  traffic:
    extProc:
      backendRef: {name: mcp-guard, port: 8080}
"""
CALL = {"name": "get_balance", "arguments": {"customer_id": "C-1001"}}

PASS: dict[str, Any] = {"action": "pass"}
SLOW = "slow"  # never answers (until the test ends): the waypoint's timeout must end the call
SLOW_TIMEOUT = 0.3  # a guard that never answers is waited for this long, not GUARD_TIMEOUT
Answer = Any  # a JSON answer, SLOW, a (status, raw body) pair, or a function of the call's body


@dataclass
class FakeGuard:
    """Answers POST /request and /response as `answers` says (pass by default); records each call."""

    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route(path, self.handle, methods=["POST"]) for path in ("/request", "/response")]
        )

    async def handle(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.calls.append((request.url.path, body))
        answer = self.answers.get(request.url.path, PASS)
        if callable(answer):
            answer = answer(body)
        if answer == SLOW:
            await self.release.wait()
            return JSONResponse(PASS)
        if isinstance(answer, tuple):
            status, raw = answer
            return Response(raw, status_code=status, media_type="application/json")
        return JSONResponse(answer)

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


@dataclass
class Setup:
    waypoint: Waypoint
    recorder: Recorder
    guard: FakeGuard
    pool: httpcore.AsyncConnectionPool


@asynccontextmanager
async def guarded(
    tmp_path: Path,
    guard: FakeGuard | None = None,
    *,
    policy: bool = True,
    down: bool = False,
    guard_timeout: float = GUARD_TIMEOUT,
) -> AsyncIterator[Setup]:
    """The bank behind the waypoint, with the guard policy (or not), the fake guard up (or down)."""
    guard = guard or FakeGuard()
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    recorder = Recorder(build_server().streamable_http_app(transport_security=security))
    manifests = MANIFESTS + BANK + (GUARD_POLICY if policy else "")
    closed, _ = refused_url()  # bound, never listening: a guard that is down
    target: Any = closed.getsockname()[1] if down else guard.app()
    try:
        async with running(
            tmp_path,
            manifests=manifests,
            backend=recorder,
            others={GUARD_HOST: target},
            guard_timeout=guard_timeout,
        ) as wp:
            pool, _ = wp.client(ALICE)
            try:
                yield Setup(wp, recorder, guard, pool)
            finally:
                guard.release.set()  # a slow guard's call may end now: the servers can stop
    finally:
        closed.close()


async def call_tool(setup: Setup, request_id: int = 7) -> httpcore.Response:
    """A modern (2026-07-28) tools/call: its answer is one JSON body."""
    headers = modern_headers("tools/call", "get_balance")
    return await post(setup.pool, headers, modern_body("tools/call", CALL, request_id=request_id))


async def list_tools(setup: Setup, request_id: int = 5) -> httpcore.Response:
    return await post(
        setup.pool, modern_headers("tools/list"), modern_body("tools/list", {}, request_id=request_id)
    )


def error_of(response: httpcore.Response) -> dict[str, Any]:
    body = json.loads(response.content)
    assert set(body) == {"jsonrpc", "id", "error"}
    return body


def line_of(setup: Setup, method: str) -> dict[str, Any]:
    [line] = [line for line in setup.waypoint.lines() if line["mcp.method"] == method]
    return line


def denied(setup: Setup, reason: str) -> float:
    return setup.waypoint.metric(
        "agentgateway_policy_denials_total",
        gateway="shop/wp",
        route="shop/bank-mcp",
        reason=reason,
        source_principal=str(ALICE),
    )


# --- the request phase: POST /request before a tools/call is forwarded --------------------------


async def test_a_rejected_call_is_a_403_deny_and_never_reaches_the_backend(tmp_path: Path) -> None:
    reject = {
        "action": "reject",
        "rule": "pinned-schema",
        "reason": "argument customer_profile is not pinned",
    }
    async with guarded(tmp_path, FakeGuard({"/request": reject})) as setup:
        response = await call_tool(setup)

        assert response.status == 403
        error = error_of(response)
        assert error["id"] == 7
        assert error["error"]["code"] == FORBIDDEN
        assert "mcp-guard rule pinned-schema" in error["error"]["message"]
        assert setup.recorder.methods == []  # the backend never saw the call
        [(path, body)] = setup.guard.calls
        assert path == "/request"
        assert body["backend"] == "bank-mcp"
        assert body["caller"] == str(ALICE)
        assert body["session"] == ""
        assert body["message"]["id"] == 7
        assert body["message"]["method"] == "tools/call"
        assert body["message"]["params"]["arguments"] == CALL["arguments"]
        line = line_of(setup, "tools/call")
        assert (line["decision"], line["http.status"]) == ("deny", 403)
        assert line["rule"] == "mcp-guard/pinned-schema"
        assert line["reason"] == "mcp guard: argument customer_profile is not pinned"
        assert denied(setup, "mcp guard") == 1
        assert GUARD_HOST in setup.waypoint.egress.connected  # through the waypoint's own egress


async def test_a_passed_call_is_forwarded_and_its_answer_judged(tmp_path: Path) -> None:
    async with guarded(tmp_path) as setup:
        response = await call_tool(setup)

        assert response.status == 200, response.content
        [answer] = messages(response)
        assert answer["result"]["content"][0]["text"] == "C-1001"
        assert setup.recorder.methods == ["tools/call"]
        assert setup.guard.paths() == ["/request", "/response"]
        sent = setup.guard.calls[1][1]
        assert sent["request"]["method"] == "tools/call"
        assert sent["response"] == answer  # what the backend answered, before the caller saw it
        line = line_of(setup, "tools/call")
        assert line["decision"] == "allow"
        assert (line["mcp_guard.request"], line["mcp_guard.response"]) == ("pass", "pass")


async def test_without_a_guard_policy_the_guard_is_never_called(tmp_path: Path) -> None:
    async with guarded(tmp_path, policy=False) as setup:
        assert (await call_tool(setup)).status == 200
        assert (await list_tools(setup)).status == 200

        assert setup.guard.calls == []
        assert GUARD_HOST not in setup.waypoint.egress.connected
        assert setup.recorder.methods == ["tools/call", "tools/list"]


# --- the response phase: POST /response before the caller sees an answer -------------------------


def quarantined(body: dict[str, Any]) -> dict[str, Any]:
    """A mask of a tools/call result: the text replaced by a placeholder."""
    response = body["response"]
    placeholder = {"type": "text", "text": "[quarantined by mcp-guard]"}
    replacement = {**response, "result": {**response["result"], "content": [placeholder]}}
    replacement["result"].pop("structuredContent", None)
    return {
        "action": "mask",
        "rule": "quarantine",
        "reason": "instruction-like text",
        "response": replacement,
    }


def pinned(body: dict[str, Any]) -> dict[str, Any]:
    """A mask of a tools/list result: every tool's description replaced by its pinned one."""
    response = body["response"]
    tools = [{**tool, "description": "pinned"} for tool in response["result"]["tools"]]
    replacement = {**response, "result": {**response["result"], "tools": tools}}
    return {"action": "mask", "rule": "tool-pin", "reason": "drift", "response": replacement}


async def test_a_masked_tools_call_answer_json(tmp_path: Path) -> None:
    async with guarded(tmp_path, FakeGuard({"/response": quarantined})) as setup:
        response = await call_tool(setup)

        assert response.status == 200
        assert dict(response.headers)[b"content-type"].startswith(b"application/json")
        assert int(dict(response.headers)[b"content-length"]) == len(response.content)
        [answer] = messages(response)
        assert answer["id"] == 7
        assert answer["result"]["content"] == [{"type": "text", "text": "[quarantined by mcp-guard]"}]
        assert b"C-1001" not in response.content
        assert line_of(setup, "tools/call")["mcp_guard.response"] == "mask mcp-guard/quarantine"


async def test_a_masked_tools_call_answer_sse(tmp_path: Path) -> None:
    async with guarded(tmp_path, FakeGuard({"/response": quarantined})) as setup:
        headers = await legacy_session(setup.pool)
        response = await post(setup.pool, headers, legacy_body("tools/call", CALL, request_id=3))

        assert response.status == 200
        assert dict(response.headers)[b"content-type"].startswith(b"text/event-stream")
        [answer] = [m for m in messages(response) if m.get("id") == 3]
        assert answer["result"]["content"] == [{"type": "text", "text": "[quarantined by mcp-guard]"}]
        assert b"C-1001" not in response.content
        sent = [body for path, body in setup.guard.calls if path == "/response"]
        assert [b["request"]["method"] for b in sent] == ["tools/call"]
        assert sent[0]["session"] == headers["mcp-session-id"]


async def test_a_masked_tools_list_json_is_then_filtered_by_the_allowlist(tmp_path: Path) -> None:
    async with guarded(tmp_path, FakeGuard({"/response": pinned})) as setup:
        response = await list_tools(setup)

        assert response.status == 200
        [answer] = messages(response)
        assert [(t["name"], t["description"]) for t in answer["result"]["tools"]] == [
            ("get_balance", "pinned")
        ]
        [(path, body)] = setup.guard.calls  # tools/list is not judged before the backend
        assert path == "/response"
        # the guard saw the whole listing: it is called before the allowlist filter
        assert {t["name"] for t in body["response"]["result"]["tools"]} == {"get_balance", "secret_tool"}


async def test_a_masked_tools_list_sse(tmp_path: Path) -> None:
    async with guarded(tmp_path, FakeGuard({"/response": pinned})) as setup:
        headers = await legacy_session(setup.pool)
        response = await post(setup.pool, headers, legacy_body("tools/list", {}, request_id=4))

        assert response.status == 200
        assert dict(response.headers)[b"content-type"].startswith(b"text/event-stream")
        [answer] = [m for m in messages(response) if m.get("id") == 4]
        assert [(t["name"], t["description"]) for t in answer["result"]["tools"]] == [
            ("get_balance", "pinned")
        ]


async def test_a_rejected_answer_is_a_502_and_nothing_of_it_returned(tmp_path: Path) -> None:
    reject = {"action": "reject", "rule": "quarantine", "reason": "unmaskable"}
    async with guarded(tmp_path, FakeGuard({"/response": reject})) as setup:
        response = await call_tool(setup)

        assert response.status == 502
        error = error_of(response)
        assert error["id"] == 7
        assert "mcp-guard rule quarantine" in error["error"]["message"]
        assert b"C-1001" not in response.content
        assert setup.recorder.methods == ["tools/call"]
        line = line_of(setup, "tools/call")
        assert (line["decision"], line["rule"], line["reason"]) == (
            "deny",
            "mcp-guard/quarantine",
            "mcp guard: unmaskable",
        )


# --- failing closed ----------------------------------------------------------------------------

NOT_ANSWERS: dict[str, Answer] = {
    "http-500": (500, b'{"action": "pass"}'),
    "not-json": (200, b"pass"),
    "not-an-object": (200, b'["pass"]'),
    "unknown-action": {"action": "allow"},
    "reject-without-rule": {"action": "reject", "reason": "no"},
    "extra-member": {"action": "pass", "note": "x"},
    "rule-not-a-name": {"action": "reject", "rule": "Quarantine!\n", "reason": "x"},
}


@pytest.mark.parametrize("answer", [*NOT_ANSWERS, "slow", "down", "mask-of-a-request"])
async def test_a_guard_that_cannot_judge_a_call_refuses_it_with_503(tmp_path: Path, answer: str) -> None:
    spec = {"slow": SLOW, "mask-of-a-request": pinned}.get(answer, NOT_ANSWERS.get(answer))
    timeout = SLOW_TIMEOUT if answer == "slow" else GUARD_TIMEOUT
    async with guarded(
        tmp_path, FakeGuard({"/request": spec}), down=answer == "down", guard_timeout=timeout
    ) as setup:
        response = await call_tool(setup)

        assert response.status == 503
        error = error_of(response)
        assert (error["id"], error["error"]["code"]) == (7, GUARD_UNAVAILABLE)
        assert error["error"]["message"] == "mcp guard unavailable"
        assert setup.recorder.methods == []  # nothing forwarded
        line = line_of(setup, "tools/call")
        assert (line["decision"], line["rule"]) == ("deny", "mcp-guard")
        assert line["reason"].startswith("mcp guard unavailable: shop/mcp-guard")
        assert denied(setup, "mcp guard unavailable") == 1


def wrong_id(body: dict[str, Any]) -> dict[str, Any]:
    mask = pinned(body)
    mask["response"]["id"] = str(body["request"]["id"])
    return mask


@pytest.mark.parametrize("answer", [*NOT_ANSWERS, "slow", "down", "mask-with-another-id"])
async def test_a_guard_that_cannot_judge_an_answer_returns_502_and_nothing_of_it(
    tmp_path: Path, answer: str
) -> None:
    spec = {"slow": SLOW, "mask-with-another-id": wrong_id}.get(answer, NOT_ANSWERS.get(answer))
    timeout = SLOW_TIMEOUT if answer == "slow" else GUARD_TIMEOUT
    async with guarded(
        tmp_path, FakeGuard({"/response": spec}), down=answer == "down", guard_timeout=timeout
    ) as setup:
        response = await list_tools(setup)  # tools/list: the guard is asked after the backend only

        assert response.status == 502
        error = error_of(response)
        assert (error["id"], error["error"]["code"]) == (5, GUARD_UNAVAILABLE)
        assert b"get_balance" not in response.content
        assert setup.recorder.methods == ["tools/list"]
        line = line_of(setup, "tools/list")
        assert (line["decision"], line["rule"], line["http.status"]) == ("deny", "mcp-guard", 502)
        assert line["reason"].startswith("mcp guard unavailable: shop/mcp-guard")


async def test_a_backend_refusal_keeps_its_status_but_not_its_body(tmp_path: Path) -> None:
    """An unknown session: the SDK server answers 404, which the client's transport acts on."""
    async with guarded(tmp_path) as setup:
        headers = legacy_headers(mcp_session_id=SESSION, mcp_protocol_version=LEGACY)
        response = await post(setup.pool, headers, legacy_body("tools/list", {}, request_id=6))

        assert response.status == 404
        assert error_of(response)["id"] == 6
        assert error_of(response)["error"]["message"] == "the MCP backend answered HTTP 404"
        assert setup.recorder.methods == ["tools/list"]
        assert setup.guard.calls == []  # nothing the guard could judge, and nothing of it returned
        assert line_of(setup, "tools/list")["mcp_guard.response"] == "withheld: HTTP 404"
