"""The wire: a body that is not the contract's is a 400 naming the fault; answers have the contract's keys."""

from __future__ import annotations

import json

import pytest

from tests.mesh.guard.client import BOT, Guard

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_balance", "arguments": {}}}
GOOD_REQUEST = {"backend": "account-mcp", "caller": BOT, "session": "", "message": CALL}
GOOD_RESPONSE = {
    "backend": "account-mcp", "caller": BOT, "session": "", "request": CALL,
    "response": {"jsonrpc": "2.0", "id": 1, "result": {"content": []}},
}  # fmt: skip


def without(body: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/request", b"{not json", "body is not JSON"),
        ("/request", b"\xff\xfe", "body is not JSON"),
        ("/request", b"[]", "body must be a JSON object, not list"),
        ("/request", without(GOOD_REQUEST, "backend"), "'backend' is missing"),
        ("/request", {**GOOD_REQUEST, "backend": ""}, "'backend' must not be empty"),
        ("/request", {**GOOD_REQUEST, "caller": None}, "'caller' must be a string, not NoneType"),
        ("/request", without(GOOD_REQUEST, "session"), "'session' is missing"),
        ("/request", without(GOOD_REQUEST, "message"), "'message' must be a JSON-RPC object"),
        ("/request", {**GOOD_REQUEST, "message": {"jsonrpc": "2.0", "id": 1}}, "'message' has no method"),
        (
            "/request",
            {**GOOD_REQUEST, "message": {**CALL, "params": [1]}},
            "'message.params' must be an object",
        ),
        ("/response", without(GOOD_RESPONSE, "request"), "'request' must be a JSON-RPC object"),
        ("/response", {**GOOD_RESPONSE, "response": "ok"}, "'response' must be a JSON-RPC object"),
        ("/response", {**GOOD_RESPONSE, "response": {"id": 1}}, "exactly one of 'result' and 'error'"),
        ("/response", {**GOOD_RESPONSE, "response": {"id": 1, "result": {}, "error": {}}}, "exactly one of"),
    ],
)
async def test_malformed_bodies_are_400(guard: Guard, path: str, body: object, message: str) -> None:
    answer = await guard.post(path, body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert guard.evidence() == [], "a 400 is not a decision: the waypoint fails closed on it"


async def test_well_formed_bodies_get_a_decision(guard: Guard) -> None:
    for path, body in (("/request", GOOD_REQUEST), ("/response", GOOD_RESPONSE)):
        answer = await guard.post(path, body)
        assert answer.status_code == 200
        assert set(answer.json()) <= {"action", "rule", "reason", "response"}


async def test_an_error_response_passes(guard: Guard) -> None:
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "no such customer"}}
    assert await guard.decide("/response", {**GOOD_RESPONSE, "response": error}) == {"action": "pass"}


async def test_oversized_body_is_400(guard: Guard) -> None:
    huge = json.dumps({**GOOD_REQUEST, "pad": "x" * (4 * 1024 * 1024)}).encode()
    answer = await guard.post("/request", huge)
    assert answer.status_code == 400
    assert "larger than" in answer.json()["error"]


async def test_wrong_method_is_405(guard: Guard) -> None:
    assert (await guard.http.get("/request")).status_code == 405
