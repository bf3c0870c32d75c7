"""The waypoint's call to the MCP guard, the external processor a route's `traffic.extProc` names.

agentgateway calls its processor over gRPC, Envoy's ext_proc protocol; the embedded waypoint
speaks the guard's own HTTP/1.1 JSON wire instead (shaped after agentgateway's Guardrail Webhook
API, one call per MCP message): `POST /request` before a `tools/call` is forwarded, and
`POST /response` before a `tools/list` or `tools/call` answer reaches the caller. The call goes
through the waypoint's upstream pool, the same mesh path as its backends (HBONE, mTLS with the
waypoint's SVID), so the guard's ztunnel sees the waypoint's identity.

It fails closed: no answer within GUARD_TIMEOUT, a connection that fails, a status other than
200, or a body that is not exactly one of the contract's answers is `GuardUnavailable`, and the
caller refuses the request. Nothing is guessed from a partial answer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpcore
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from trustusbank.errors import UnavailableError
from trustusbank.mesh.waypoint.mcp import McpMessage
from trustusbank.mesh.waypoint.mcp.strict_json import JsonError, loads
from trustusbank.mesh.waypoint.routes import Guard
from trustusbank.telemetry.tracing import inject

GUARD_TIMEOUT = 2.0  # seconds for the whole call: connect, send, the full answer
MAX_ANSWER = 8 * 1024 * 1024  # a mask carries a whole tool result; more than this is not an answer
MAX_REASON = 4096
_RULE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")  # named in logs, metrics and the caller's error

Action = Literal["pass", "mask", "reject"]


class GuardUnavailable(UnavailableError):
    """The guard did not judge: unreachable, too slow, or an answer outside the contract."""


@dataclass(frozen=True)
class Verdict:
    action: Action
    rule: str = ""
    reason: str = ""
    response: dict[str, Any] | None = None
    """A mask's replacement JSON-RPC response."""


@dataclass(frozen=True)
class Exchange:
    """Who asks what of which backend: the part both calls share."""

    backend: str
    """The AgentgatewayBackend's name."""
    caller: str
    """The caller's SPIFFE ID, from its tunnel certificate ("" if none)."""
    session: str
    """The `Mcp-Session-Id` header ("" if none)."""

    def body(self, **rest: Any) -> dict[str, Any]:
        return {"backend": self.backend, "caller": self.caller, "session": self.session, **rest}


def request_object(message: McpMessage) -> dict[str, Any]:
    """A parsed JSON-RPC request as the guard is sent it."""
    return {"jsonrpc": "2.0", "id": message.id, "method": message.method, "params": dict(message.params)}


class GuardClient:
    """Calls a route's guard through the waypoint's upstream pool; one instance per waypoint."""

    def __init__(
        self, pool: httpcore.AsyncConnectionPool, tracer: trace.Tracer, timeout: float = GUARD_TIMEOUT
    ) -> None:
        self.pool = pool
        self.tracer = tracer
        self.timeout = timeout

    async def judge_request(self, guard: Guard, exchange: Exchange, message: dict[str, Any]) -> Verdict:
        """`POST /request`: pass or reject, before `message` is forwarded."""
        body = exchange.body(message=message)
        return await self._call(guard, "/request", body, ("pass", "reject"), message.get("id"))

    async def judge_response(
        self, guard: Guard, exchange: Exchange, request: dict[str, Any], response: dict[str, Any]
    ) -> Verdict:
        """`POST /response`: pass, mask or reject, before `response` reaches the caller."""
        body = exchange.body(request=request, response=response)
        return await self._call(guard, "/response", body, ("pass", "mask", "reject"), request.get("id"))

    async def _call(
        self, guard: Guard, path: str, body: dict[str, Any], allowed: tuple[Action, ...], request_id: Any
    ) -> Verdict:
        url = f"http://{guard.host}:{guard.port}{path}"
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        with self.tracer.start_as_current_span(
            f"waypoint mcp-guard {path}", kind=SpanKind.CLIENT, attributes={"url.full": url}
        ) as span:
            headers = [
                (b"host", f"{guard.host}:{guard.port}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *((k.encode(), v.encode()) for k, v in inject().items()),
            ]
            try:
                async with asyncio.timeout(self.timeout):
                    status, raw = await _exchange(self.pool, url, headers, content)
                verdict = _verdict(status, raw, allowed, request_id)
            except TimeoutError:
                span.set_status(Status(StatusCode.ERROR, "timeout"))
                raise GuardUnavailable(f"{guard.service}: no answer within {self.timeout:g}s") from None
            except GuardUnavailable as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise GuardUnavailable(f"{guard.service}: {exc}") from None
            except Exception as exc:  # any failure to reach it: it did not judge
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise GuardUnavailable(f"{guard.service} unreachable: {type(exc).__name__}: {exc}") from exc
            span.set_attribute("mcp_guard.action", verdict.action)
            return verdict


async def _exchange(
    pool: httpcore.AsyncConnectionPool, url: str, headers: list[tuple[bytes, bytes]], content: bytes
) -> tuple[int, bytes]:
    async with pool.stream("POST", url, headers=headers, content=content) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_stream():
            size += len(chunk)
            if size > MAX_ANSWER:
                raise GuardUnavailable(f"answer larger than {MAX_ANSWER} bytes")
            chunks.append(chunk)
        return response.status, b"".join(chunks)


def _verdict(status: int, raw: bytes, allowed: tuple[Action, ...], request_id: Any) -> Verdict:
    """The answer, if it is exactly one the contract allows here; GuardUnavailable otherwise."""
    if status != 200:
        raise GuardUnavailable(f"answered HTTP {status}")
    try:
        answer = loads(raw)
    except JsonError as exc:
        raise GuardUnavailable(f"answer is not JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise GuardUnavailable("answer is not a JSON object")
    action = answer.get("action")
    if action not in allowed:
        raise GuardUnavailable(f"action {action!r} is not one of {', '.join(allowed)}")
    keys = {
        "pass": {"action"},
        "reject": {"action", "rule", "reason"},
        "mask": {"action", "rule", "reason", "response"},
    }
    if set(answer) != keys[action]:
        raise GuardUnavailable(f"a {action} answer has exactly {', '.join(sorted(keys[action]))}")
    if action == "pass":
        return Verdict("pass")
    rule, reason = answer["rule"], answer["reason"]
    if not isinstance(rule, str) or not _RULE.fullmatch(rule):
        raise GuardUnavailable(f"rule {rule!r} is not a rule name")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise GuardUnavailable("reason is not a string of at most 4096 characters")
    if action == "reject":
        return Verdict("reject", rule, reason)
    replacement = answer["response"]
    if not _is_response_to(replacement, request_id):
        raise GuardUnavailable("a mask's response is not a JSON-RPC response to the request's id")
    return Verdict("mask", rule, reason, replacement)


def _is_response_to(message: Any, request_id: Any) -> bool:
    return (
        isinstance(message, Mapping)
        and message.get("jsonrpc") == "2.0"
        and "method" not in message
        and ("result" in message) != ("error" in message)
        and type(message.get("id")) is type(request_id)
        and message.get("id") == request_id
    )
