"""The guard's wire, as the waypoint speaks it (shaped after agentgateway's Guardrail Webhook).

Bodies are parsed strictly: a body that is not the contract's shape is the waypoint's bug or
someone else talking to the guard, so it is a 400 naming what is wrong, never a guess.
Answers are built here only, so every answer the guard sends is one the waypoint accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from trustusbank.errors import ProtocolError

Action = Literal["pass", "mask", "reject"]


class WireError(ProtocolError, ValueError):
    """A request body that is not one of the contract's two shapes (answered 400)."""


@dataclass(frozen=True)
class Exchange:
    """Who asks what of which backend: the common part of both bodies."""

    backend: str
    caller: str
    session: str

    @property
    def party(self) -> tuple[str, str]:
        """The key data-flow memory is kept under: one caller's one MCP session."""
        return (self.caller, self.session)


@dataclass(frozen=True)
class GuardRequest(Exchange):
    """POST /request: a JSON-RPC request about to be forwarded to `backend`."""

    message: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GuardResponse(Exchange):
    """POST /response: `backend`'s answer to `request`, before the agent sees it."""

    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str = ""
    reason: str = ""
    response: dict[str, Any] | None = None
    """The replacement JSON-RPC response, for a mask."""

    def answer(self) -> dict[str, Any]:
        """The JSON the waypoint is sent: only the keys its action has."""
        if self.action == "pass":
            return {"action": "pass"}
        body: dict[str, Any] = {"action": self.action, "rule": self.rule, "reason": self.reason}
        if self.action == "mask":
            if self.response is None:
                raise ValueError("a mask needs its replacement response")
            body["response"] = self.response
        return body


PASS = Decision("pass")


def _load(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"body is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise WireError(f"body must be a JSON object, not {type(parsed).__name__}")
    return parsed


def _string(body: dict[str, Any], key: str, *, nonempty: bool = False) -> str:
    if key not in body:
        raise WireError(f"'{key}' is missing")
    value = body[key]
    if not isinstance(value, str):
        raise WireError(f"'{key}' must be a string, not {type(value).__name__}")
    if nonempty and not value:
        raise WireError(f"'{key}' must not be empty")
    return value


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise WireError(f"'{key}' must be a JSON-RPC object")
    return value


def _jsonrpc_request(body: dict[str, Any], key: str) -> dict[str, Any]:
    message = _object(body, key)
    if not isinstance(message.get("method"), str) or not message["method"]:
        raise WireError(f"'{key}' has no method: not a JSON-RPC request")
    params = message.get("params", {})
    if not isinstance(params, dict):
        raise WireError(f"'{key}.params' must be an object")
    return message


def _exchange(body: dict[str, Any]) -> tuple[str, str, str]:
    return (
        _string(body, "backend", nonempty=True),
        _string(body, "caller"),
        _string(body, "session"),
    )


def parse_request(raw: bytes) -> GuardRequest:
    body = _load(raw)
    backend, caller, session = _exchange(body)
    return GuardRequest(backend, caller, session, message=_jsonrpc_request(body, "message"))


def parse_response(raw: bytes) -> GuardResponse:
    body = _load(raw)
    backend, caller, session = _exchange(body)
    request = _jsonrpc_request(body, "request")
    response = _object(body, "response")
    if ("result" in response) == ("error" in response):
        raise WireError("'response' must have exactly one of 'result' and 'error'")
    return GuardResponse(backend, caller, session, request=request, response=response)


def params(message: dict[str, Any]) -> dict[str, Any]:
    """A JSON-RPC request's params (validated an object by the parsers)."""
    found: dict[str, Any] = message.get("params") or {}
    return found
