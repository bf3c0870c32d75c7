"""parse_request accepts exactly what the MCP SDK server executes, and refuses anything else.

Accepted traffic is captured from the SDK's own `Client` talking to a real `MCPServer` over
uvicorn (both protocols, SSE and JSON-response servers); refusals are hand-built bodies, a few
of them also sent to the real server to show it rejects them too (or, for duplicate keys, that
it would execute something other than what a naive gateway judged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pydantic_core
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.inbound import InboundModernRoute, classify_inbound_request, encode_header_value
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    ElicitRequestParams,
    ElicitResult,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from mcp_types.jsonrpc import INVALID_PARAMS
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers

from trustusbank.mesh.waypoint.mcp import (
    MAX_BODY_DEFAULT,
    MAX_DEPTH,
    McpRefused,
    McpRequest,
    jsonrpc_error,
    parse_request,
)

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
ACCEPT_BOTH = "application/json, text/event-stream"
META = {PROTOCOL_VERSION_META_KEY: MODERN, CLIENT_CAPABILITIES_META_KEY: {}}
SESSION = "0123456789abcdef0123456789abcdef"


# --- request builders (the SDK's own models) ---------------------------------------------------


def modern_body(method: str, params: dict[str, Any] | None = None, request_id: int | str = 1) -> bytes:
    request = JSONRPCRequest(
        jsonrpc="2.0", id=request_id, method=method, params={**(params or {}), "_meta": META}
    )
    return request.model_dump_json(by_alias=True, exclude_none=True).encode()


def modern_headers(method: str, name: str | None = None, **extra: str) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept": ACCEPT_BOTH,
        "mcp-protocol-version": MODERN,
        "mcp-method": method,
    }
    if name is not None:
        headers["mcp-name"] = encode_header_value(name)
    return headers | {key.replace("_", "-"): value for key, value in extra.items()}


def legacy_body(method: str, params: dict[str, Any] | None = None, request_id: int | str | None = 1) -> bytes:
    model: JSONRPCRequest | JSONRPCNotification
    if request_id is None:
        model = JSONRPCNotification(jsonrpc="2.0", method=method, params=params)
    else:
        model = JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params)
    return model.model_dump_json(by_alias=True, exclude_none=True).encode()


def legacy_headers(**extra: str) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept": ACCEPT_BOTH,
        "mcp-protocol-version": LEGACY,
        "mcp-session-id": SESSION,
    }
    return headers | {key.replace("_", "-"): value for key, value in extra.items()}


def refused(http_method: str, headers: dict[str, str], body: bytes, **kwargs: Any) -> McpRefused:
    with pytest.raises(McpRefused) as info:
        parse_request(http_method, headers, body, **kwargs)
    return info.value


CALL = {"name": "get_balance", "arguments": {"customer_id": "12345"}}


# --- a real MCPServer behind a recording ASGI middleware -----------------------------------------


@dataclass
class Exchange:
    """One HTTP request the real client sent, and the real server's answer."""

    label: str
    method: str
    raw_headers: list[tuple[str, str]]
    body: bytes = b""
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.raw_headers)


class Confirm(BaseModel):
    ok: bool


def build_server() -> MCPServer:
    server = MCPServer("recorded")

    @server.tool()
    def get_balance(customer_id: str) -> str:
        """Balance of one customer."""
        return f"{customer_id}: 4287.55"

    @server.tool()
    def get_profile(customer_id: str) -> str:
        """Profile of one customer."""
        return customer_id

    @server.tool()
    def secret_tool() -> str:
        """A tool the policy hides."""
        return "secret"

    @server.tool()
    async def confirm_transfer(amount: float, ctx: Context) -> str:
        """Asks the user (elicitation) before moving money."""
        answer = await ctx.elicit(f"Move {amount}?", Confirm)
        return answer.action

    @server.prompt()
    def summary(customer_id: str) -> str:
        return f"Summarise customer {customer_id}"

    @server.resource("bank://customers/{customer_id}")
    def customer(customer_id: str) -> str:
        return customer_id

    return server


class LiveServer:
    """A real MCPServer under uvicorn on 127.0.0.1 in a thread, recording every exchange."""

    def __init__(self, *, json_response: bool, wrap: Callable[[Any], Any] | None = None) -> None:
        self.exchanges: list[Exchange] = []
        self.label = ""
        self.json_response = json_response
        app = build_server().streamable_http_app(json_response=json_response)
        app = wrap(app) if wrap is not None else app
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/mcp"
        config = uvicorn.Config(self._recording(app), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def _recording(self, app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            exchange = Exchange(
                self.label,
                scope["method"],
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            )
            self.exchanges.append(exchange)

            async def recording_receive() -> Any:
                message = await receive()
                if message["type"] == "http.request":
                    exchange.body += message.get("body", b"")
                return message

            async def recording_send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    exchange.status = message["status"]
                    exchange.response_headers = {k.decode(): v.decode() for k, v in message["headers"]}
                elif message["type"] == "http.response.body":
                    exchange.response_body += message.get("body", b"")
                await send(message)

            await app(scope, recording_receive, recording_send)

        return middleware

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


async def _accept_elicitation(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    return ElicitResult(action="accept", content={"ok": True})


async def drive_clients(server: LiveServer, *, elicit: bool) -> None:
    """What an agent does: list tools, call one, get a prompt, read a resource, in both protocols."""
    for mode in ("auto", "legacy"):
        server.label = "modern" if mode == "auto" else "legacy"
        async with Client(server.url, mode=mode, elicitation_callback=_accept_elicitation) as client:
            tools = await client.list_tools()
            assert {tool.name for tool in tools.tools} >= {"get_balance", "secret_tool"}
            result = await client.call_tool("get_balance", {"customer_id": "12345"})
            assert not result.is_error
            await client.get_prompt("summary", {"customer_id": "12345"})
            await client.read_resource("bank://customers/12345")
            if elicit and mode == "legacy":
                confirmed = await client.call_tool("confirm_transfer", {"amount": 10.0})
                assert not confirmed.is_error, confirmed


@pytest.fixture(scope="module", params=["sse", "json"])
def live(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A recording server (SSE or JSON-response mode) that the real clients have already used."""
    server = LiveServer(json_response=request.param == "json")
    server.start()
    try:
        asyncio.run(drive_clients(server, elicit=request.param == "sse"))
        server.label = "probe"
        yield server
    finally:
        server.stop()


def client_exchanges(live: LiveServer, label: str) -> list[Exchange]:
    return [e for e in live.exchanges if e.label == label]


def parsed(exchange: Exchange, **kwargs: Any) -> McpRequest:
    return parse_request(
        exchange.method, exchange.headers, exchange.body, raw_headers=exchange.raw_headers, **kwargs
    )


# --- what the real client sends is accepted, and judged right --------------------------------


def test_every_request_the_real_client_sends_is_accepted(live: LiveServer) -> None:
    exchanges = client_exchanges(live, "modern") + client_exchanges(live, "legacy")
    assert len(exchanges) >= 10
    for exchange in exchanges:
        request = parsed(exchange)
        assert exchange.status < 400, (exchange.method, exchange.body, exchange.status)
        assert request.http_method == exchange.method
        assert request.batch is False
        if exchange.method == "POST":
            [message] = request.messages
            assert message.method == json.loads(exchange.body).get("method")
        else:
            assert request.messages == ()


def test_modern_client_requests_judged_like_the_server(live: LiveServer) -> None:
    requests = [parsed(e) for e in client_exchanges(live, "modern")]
    methods = [r.messages[0].method for r in requests]
    assert methods[0] == "server/discover"
    assert {"tools/list", "tools/call", "prompts/get", "resources/read"} <= set(methods)
    for request in requests:
        assert request.protocol_version == MODERN
        assert request.session_id is None
        assert request.messages[0].kind == "request"
    call = next(r.messages[0] for r in requests if r.messages[0].method == "tools/call")
    assert call.tool_name == "get_balance"
    assert dict(call.tool_arguments or {}) == {"customer_id": "12345"}
    prompt = next(r.messages[0] for r in requests if r.messages[0].method == "prompts/get")
    assert prompt.prompt_name == "summary"
    resource = next(r.messages[0] for r in requests if r.messages[0].method == "resources/read")
    assert resource.resource_uri == "bank://customers/12345"


def test_legacy_session_judged_like_the_server(live: LiveServer) -> None:
    exchanges = client_exchanges(live, "legacy")
    requests = [parsed(e) for e in exchanges]
    initialize = requests[0]
    assert initialize.messages[0].method == "initialize"
    assert initialize.protocol_version == LEGACY
    assert initialize.session_id is None
    session_id = exchanges[0].response_headers["mcp-session-id"]
    later = requests[1:]
    assert all(r.session_id == session_id for r in later)
    kinds = {(r.http_method, r.messages[0].kind if r.messages else None) for r in later}
    assert ("POST", "notification") in kinds  # notifications/initialized
    assert ("DELETE", None) in kinds
    call = next(r.messages[0] for r in later if r.messages and r.messages[0].method == "tools/call")
    assert (call.kind, call.tool_name, dict(call.tool_arguments or {})) == (
        "request",
        "get_balance",
        {"customer_id": "12345"},
    )


def test_posted_elicitation_answer_is_a_response_message(live: LiveServer) -> None:
    """The legacy client POSTs its elicitation answer; a JSON-response server has no back-channel to ask."""
    responses = [
        m for e in client_exchanges(live, "legacy") for m in parsed(e).messages if m.kind == "response"
    ]
    assert len(responses) == (0 if live.json_response else 1)
    for answer in responses:
        assert (answer.method, answer.tool_name, answer.tool_arguments) == (None, None, None)
        assert isinstance(answer.id, int | str)


def test_sdk_built_requests_are_accepted() -> None:
    body = modern_body("tools/call", CALL, request_id="req-7")
    request = parse_request("POST", modern_headers("tools/call", "get_balance"), body)
    [message] = request.messages
    assert (message.id, message.tool_name, dict(message.tool_arguments or {})) == (
        "req-7",
        "get_balance",
        {"customer_id": "12345"},
    )
    assert request.protocol_version == MODERN
    legacy = parse_request("POST", legacy_headers(), legacy_body("tools/call", {"name": "get_profile"}))
    assert legacy.messages[0].tool_name == "get_profile"
    assert dict(legacy.messages[0].tool_arguments or {}) == {}
    assert legacy.session_id == SESSION


def test_base64_sentinel_mcp_name_is_decoded_as_the_sdk_does() -> None:
    name = "convert currency ✓"
    headers = modern_headers("tools/call", name)
    assert headers["mcp-name"].startswith("=?base64?")
    request = parse_request("POST", headers, modern_body("tools/call", {"name": name}))
    assert request.messages[0].tool_name == name


def test_accept_wildcards_and_json_response_mode() -> None:
    body = modern_body("tools/list")
    parse_request("POST", modern_headers("tools/list", accept="*/*"), body)
    parse_request("POST", modern_headers("tools/list", accept="application/*, text/*;q=0.5"), body)
    assert refused("POST", modern_headers("tools/list", accept="application/json"), body).status == 406
    parse_request("POST", modern_headers("tools/list", accept="application/json"), body, json_response=True)
    listen = modern_body("subscriptions/listen")
    headers = modern_headers("subscriptions/listen", accept="application/json")
    assert refused("POST", headers, listen, json_response=True).status == 406


def test_content_type_with_charset_is_accepted() -> None:
    headers = modern_headers("tools/list", content_type="application/json; charset=utf-8")
    parse_request("POST", headers, modern_body("tools/list"))


def test_get_and_delete_have_no_messages() -> None:
    get = parse_request("GET", {"accept": "text/event-stream", "mcp-session-id": SESSION}, b"")
    assert (get.http_method, get.messages, get.session_id) == ("GET", (), SESSION)
    delete = parse_request("DELETE", {"mcp-session-id": SESSION, "mcp-protocol-version": LEGACY}, b"")
    assert (delete.messages, delete.protocol_version) == ((), LEGACY)


def test_legacy_notifications_and_responses() -> None:
    note = parse_request("POST", legacy_headers(), legacy_body("notifications/initialized", request_id=None))
    assert (note.messages[0].kind, note.messages[0].id) == ("notification", None)
    response = JSONRPCResponse(jsonrpc="2.0", id=0, result={"action": "accept"})
    answer = parse_request("POST", legacy_headers(), response.model_dump_json(by_alias=True).encode())
    assert (answer.messages[0].kind, answer.messages[0].id, answer.messages[0].method) == (
        "response",
        0,
        None,
    )
    error = b'{"jsonrpc":"2.0","id":"s-1","error":{"code":-1,"message":"declined"}}'
    assert parse_request("POST", legacy_headers(), error).messages[0].kind == "response"


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(
            modern_headers("tools/list"), modern_body("tools/call", CALL), id="method-header-differs"
        ),
        pytest.param(
            modern_headers("tools/call", "get_profile"), modern_body("tools/call", CALL), id="name-differs"
        ),
        pytest.param(modern_headers("tools/call"), modern_body("tools/call", CALL), id="name-header-missing"),
        pytest.param(
            {k: v for k, v in modern_headers("tools/call", "get_balance").items() if k != "mcp-method"},
            modern_body("tools/call", CALL),
            id="method-header-missing",
        ),
        pytest.param(
            modern_headers("prompts/get", "other"),
            modern_body("prompts/get", {"name": "summary"}),
            id="prompt-name-differs",
        ),
        pytest.param(
            modern_headers("resources/read", "bank://customers/1"),
            modern_body("resources/read", {"uri": "bank://customers/2"}),
            id="uri-differs",
        ),
        pytest.param(
            modern_headers("tools/list", "get_balance"),
            modern_body("tools/list"),
            id="name-header-without-name",
        ),
        pytest.param(
            modern_headers("tools/call", "=?base64?not base64?="),
            modern_body("tools/call", CALL),
            id="malformed-base64-name",
        ),
        pytest.param(
            legacy_headers(mcp_method="tools/list"), legacy_body("tools/call", CALL), id="legacy-method"
        ),
        pytest.param(
            legacy_headers(mcp_name="get_profile"), legacy_body("tools/call", CALL), id="legacy-name"
        ),
        pytest.param(
            legacy_headers(mcp_method="tools/call"),
            b'{"jsonrpc":"2.0","id":1,"result":{}}',
            id="legacy-method-on-response",
        ),
    ],
)
def test_header_body_disagreement_is_refused(headers: dict[str, str], body: bytes) -> None:
    error = refused("POST", headers, body)
    assert (error.status, error.code) == (400, -32020)
    assert error.request_id == 1


def test_version_header_must_match_the_envelope() -> None:
    body = JSONRPCRequest(
        jsonrpc="2.0",
        id=1,
        method="tools/list",
        params={"_meta": {PROTOCOL_VERSION_META_KEY: "2027-01-01", CLIENT_CAPABILITIES_META_KEY: {}}},
    ).model_dump_json()
    error = refused("POST", modern_headers("tools/list"), body.encode())
    assert (error.status, error.code) == (400, -32020)
    missing_meta = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
    assert refused("POST", modern_headers("tools/list"), missing_meta).code == -32602


def test_duplicated_routing_header_is_refused() -> None:
    headers = modern_headers("tools/call", "get_balance")
    raw = [*headers.items(), ("mcp-name", "get_profile")]
    error = refused("POST", headers, modern_body("tools/call", CALL), raw_headers=raw)
    assert (error.status, error.code) == (400, -32020)
    assert refused("POST", {**headers, "MCP-Name": "x"}, modern_body("tools/call", CALL)).status == 400


def test_starlette_headers_duplicates() -> None:
    """Starlette's `Headers` list every line: a judged header twice is refused, others keep the first copy."""
    lines = [(k.encode(), v.encode()) for k, v in modern_headers("tools/call", "get_balance").items()]
    forwarded = [(b"x-forwarded-for", b"10.0.0.1"), (b"x-forwarded-for", b"10.0.0.2")]
    ok = parse_request("POST", Headers(raw=lines + forwarded), modern_body("tools/call", CALL))
    assert ok.messages[0].tool_name == "get_balance"
    twice = Headers(raw=[*lines, (b"mcp-method", b"tools/list")])
    assert refused("POST", twice, modern_body("tools/call", CALL)).code == -32020
    accept_twice = Headers(raw=[*lines, (b"accept", b"text/plain")])
    assert refused("POST", accept_twice, modern_body("tools/call", CALL)).status == 400


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}', id="top-level"),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_balance","name":"secret_tool"}}',
            id="tool-name",
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_balance",'
            b'"arguments":{"customer_id":"1","customer_id":"2"}}}',
            id="in-arguments",
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x",'
            b'"arguments":{"a":[{"b":{"c":1,"c":2}}]}}}',
            id="deeply-nested",
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","na\\u006de":"b"}}',
            id="escaped-duplicate",
        ),
    ],
)
def test_duplicate_keys_are_refused(body: bytes) -> None:
    error = refused("POST", legacy_headers(), body)
    assert (error.status, error.code) == (400, -32700)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\xff"}}', id="invalid-utf8"
        ),
        pytest.param(b"\xef\xbb\xbf" + legacy_body("tools/list"), id="bom"),
        pytest.param(legacy_body("tools/list").decode().encode("utf-16-le"), id="utf-16"),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\ud800"}}', id="surrogate"
        ),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"', id="truncated"),
        pytest.param(legacy_body("tools/list") + b" {}", id="trailing-data"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"t","params":{"a":NaN}}', id="nan"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"t","params":{"a":-Infinity}}', id="infinity"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"t","params":{"a":1e400}}', id="overflow"),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"t","params":{"a":' + b"9" * 5000 + b"}}", id="huge-int"
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"t","params":{"a":'
            + b"[" * MAX_DEPTH
            + b"]" * MAX_DEPTH
            + b"}}",
            id="too-deep",
        ),
        pytest.param(b"[" * 100_000, id="recursion"),
    ],
)
def test_unparseable_bodies_are_refused(body: bytes) -> None:
    error = refused("POST", legacy_headers(), body)
    assert (error.status, error.code, error.request_id) == (400, -32700, None)


def test_size_limits() -> None:
    big = legacy_body("tools/call", {"name": "x", "arguments": {"pad": "a" * MAX_BODY_DEFAULT}})
    assert refused("POST", legacy_headers(), big).status == 413
    small = legacy_body("tools/list")
    assert refused("POST", legacy_headers(), small, max_body=len(small) - 1).status == 413
    assert refused("POST", legacy_headers(content_length="99999999"), small).status == 413
    parse_request("POST", legacy_headers(content_length=str(len(small))), small)
    assert refused("POST", legacy_headers(content_length=str(len(small) + 1)), small).status == 400
    assert refused("POST", legacy_headers(content_length="1e3"), small).status == 400


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/jsonx",
        "application/json-seq",
        "Application/JSON",
        " application/json",
        "application/json; charset=latin-1",
        "application/json; boundary=x",
        "application/json, text/plain",
        "text/event-stream",
    ],
)
def test_wrong_content_type_is_refused(content_type: str | None) -> None:
    headers = legacy_headers()
    if content_type is None:
        del headers["content-type"]
    else:
        headers["content-type"] = content_type
    assert refused("POST", headers, legacy_body("tools/list")).status == 415


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" + legacy_body("tools/call", CALL) + b"]", id="one"),
        pytest.param(
            b"[" + legacy_body("tools/list") + b"," + legacy_body("tools/call", CALL) + b"]", id="two"
        ),
        pytest.param(b"[]", id="empty"),
    ],
)
def test_batches_are_refused(body: bytes) -> None:
    for headers in (legacy_headers(), modern_headers("tools/call", "get_balance")):
        error = refused("POST", headers, body)
        assert (error.status, error.code) == (400, -32600)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param({"arguments": {"a": 1}}, -32602, id="tools-call-without-name"),
        pytest.param({"name": 7}, -32602, id="name-not-string"),
        pytest.param({"name": None}, -32602, id="name-null"),
        pytest.param({"name": "get_balance", "arguments": ["12345"]}, -32602, id="arguments-list"),
        pytest.param({"name": "get_balance", "arguments": "customer_id=1"}, -32602, id="arguments-string"),
        pytest.param({"name": "get_balance", "arguments": None}, -32602, id="arguments-null"),
    ],
)
def test_malformed_tools_call_is_refused(params: dict[str, Any], code: int) -> None:
    error = refused("POST", legacy_headers(), legacy_body("tools/call", params))
    assert (error.status, error.code, error.request_id) == (400, code, 1)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["get_balance"]}', id="list"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"get_balance"}', id="string"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}', id="null"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"tools/call"}', id="absent"),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{}}', id="prompt-without-name"
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":[]}}',
            id="prompt-arguments-list",
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}', id="read-without-uri"
        ),
        pytest.param(b'{"jsonrpc":"2.0","method":"tools/call","params":{}}', id="notification-without-name"),
    ],
)
def test_non_object_or_missing_params_are_refused(body: bytes) -> None:
    error = refused("POST", legacy_headers(), body)
    assert error.status == 400
    assert error.code in (-32600, -32602)


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param(b"true", id="bool"),
        pytest.param(b"1.0", id="float"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"a":1}', id="object"),
        pytest.param(b"[1]", id="list"),
    ],
)
def test_bad_request_ids_are_refused(request_id: bytes) -> None:
    body = b'{"jsonrpc":"2.0","id":' + request_id + b',"method":"tools/list"}'
    for headers in (legacy_headers(), modern_headers("tools/list")):
        error = refused("POST", headers, body)
        assert (error.status, error.code, error.request_id) == (400, -32600, None)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"id":1,"method":"tools/list"}', id="no-jsonrpc"),
        pytest.param(b'{"jsonrpc":"1.0","id":1,"method":"tools/list"}', id="jsonrpc-1.0"),
        pytest.param(b'{"jsonrpc":2.0,"id":1,"method":"tools/list"}', id="jsonrpc-number"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":["tools/list"]}', id="method-list"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"tools/list","extra":1}', id="extra-member"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"tools/list","result":{}}', id="method-and-result"),
        pytest.param(
            b'{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}', id="result-and-error"
        ),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"result":[]}', id="result-list"),
        pytest.param(b'{"jsonrpc":"2.0","id":null,"result":{}}', id="response-id-null"),
        pytest.param(b'{"jsonrpc":"2.0","id":1,"error":{"code":true,"message":"x"}}', id="error-code-bool"),
        pytest.param(b'{"jsonrpc":"2.0","id":1}', id="neither"),
        pytest.param(b'"tools/list"', id="string"),
        pytest.param(b"1", id="number"),
    ],
)
def test_malformed_envelopes_are_refused(body: bytes) -> None:
    error = refused("POST", legacy_headers(), body)
    assert (error.status, error.code) == (400, -32600)


def test_modern_server_accepts_no_posted_responses() -> None:
    body = b'{"jsonrpc":"2.0","id":1,"result":{}}'
    headers = {k: v for k, v in modern_headers("x").items() if k != "mcp-method"}
    assert (refused("POST", headers, body).status, refused("POST", headers, body).code) == (400, -32600)


def test_http_level_refusals() -> None:
    assert refused("PUT", legacy_headers(), legacy_body("tools/list")).status == 405
    assert refused("post", legacy_headers(), legacy_body("tools/list")).status == 405
    assert refused("GET", modern_headers("tools/list"), b"").status == 405
    assert refused("DELETE", modern_headers("tools/list"), b"").status == 405
    assert refused("GET", {"accept": "application/json"}, b"").status == 406
    assert refused("GET", {"accept": "text/event-stream"}, b"{}").status == 400
    assert refused("GET", {"accept": "text/event-stream", "mcp-method": "tools/call"}, b"").status == 400
    unknown = modern_headers("tools/list", mcp_protocol_version="2099-01-01")
    assert (refused("POST", unknown, modern_body("tools/list")).code) == -32022
    with_session = modern_headers("tools/list", mcp_session_id=SESSION)
    assert refused("POST", with_session, modern_body("tools/list")).status == 400
    bad_session = legacy_headers(mcp_session_id="has space")
    assert refused("POST", bad_session, legacy_body("tools/list")).status == 400


def test_initialize_version_must_agree_with_any_header() -> None:
    params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}
    headers = {"content-type": "application/json", "accept": ACCEPT_BOTH}
    assert parse_request("POST", headers, legacy_body("initialize", params)).protocol_version == LEGACY
    other = headers | {"mcp-protocol-version": "2025-06-18"}
    assert refused("POST", other, legacy_body("initialize", params)).status == 400


def test_refusal_body_is_a_jsonrpc_error() -> None:
    error = refused("POST", modern_headers("tools/list"), modern_body("tools/call", CALL, request_id="r1"))
    assert json.loads(error.body()) == {
        "jsonrpc": "2.0",
        "id": "r1",
        "error": {"code": -32020, "message": error.message},
    }
    assert json.loads(jsonrpc_error(None, -32700, "Parse error"))["id"] is None
    jsonrpc_message_adapter.validate_json(error.body())


# --- the real server agrees (or shows why the gateway must be stricter) --------------------------


def post(live: LiveServer, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(live.url, headers=headers, content=body, timeout=10)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(modern_headers("tools/list"), modern_body("tools/call", CALL), id="method-mismatch"),
        pytest.param(
            modern_headers("tools/call", "get_profile"), modern_body("tools/call", CALL), id="name-mismatch"
        ),
        pytest.param(modern_headers("tools/call"), modern_body("tools/call", CALL), id="name-missing"),
        pytest.param(
            modern_headers("tools/call", "x"), b"[" + modern_body("tools/call", CALL) + b"]", id="batch"
        ),
        pytest.param(
            modern_headers("tools/list"), b'{"jsonrpc":"2.0","id":true,"method":"tools/list"}', id="bool-id"
        ),
        pytest.param(
            modern_headers("tools/call", "get_balance"),
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_balance"',
            id="truncated",
        ),
        pytest.param(
            modern_headers("tools/list", content_type="text/plain"), modern_body("tools/list"), id="ctype"
        ),
    ],
)
def test_real_server_rejects_what_the_gateway_refuses(
    live: LiveServer, headers: dict[str, str], body: bytes
) -> None:
    refused("POST", headers, body)
    assert 400 <= post(live, headers, body).status_code < 500


def test_real_server_executes_the_last_duplicate_so_the_gateway_refuses(live: LiveServer) -> None:
    """A gateway keeping the first `name` would judge get_balance while the server runs secret_tool."""
    body = (
        b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_balance","name":"secret_tool",'
        b'"_meta":' + json.dumps(META).encode() + b"}}"
    )
    headers = modern_headers("tools/call", "secret_tool")
    response = post(live, headers, body)
    assert response.status_code == 200
    assert "secret" in response.text
    assert refused("POST", headers, body).code == -32700


def test_real_server_accepts_what_the_gateway_accepts(live: LiveServer) -> None:
    for headers, body in [
        (modern_headers("tools/call", "get_balance"), modern_body("tools/call", CALL)),
        (
            modern_headers("tools/list", content_type="application/json; charset=utf-8"),
            modern_body("tools/list"),
        ),
    ]:
        parse_request("POST", headers, body)
        assert post(live, headers, body).status_code == 200


# --- fuzzing -----------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
OBJECTS = st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=4)
BAD_IDS = (
    st.booleans() | st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.lists(st.integers())
)
IDS = st.integers() | st.text(max_size=3)
METHODS = st.sampled_from(["tools/call", "tools/list", "prompts/get", "resources/read", "initialize", "ping"])


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly well-formed requests, notifications and responses, each member now and then wrong."""

    def member(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any] = JSON_VALUES) -> Any:
        return draw(bad) if draw(st.integers(0, 7)) == 7 else draw(good)

    envelope: dict[str, Any] = {"jsonrpc": member(st.just("2.0"), st.sampled_from(["1.0", 2.0, None]))}
    kind = draw(st.sampled_from(["request", "notification", "response"]))
    if kind == "response":
        envelope["id"] = member(IDS, BAD_IDS)
        if draw(st.booleans()):
            envelope["result"] = member(OBJECTS)
        else:
            envelope["error"] = member(st.fixed_dictionaries({"code": st.integers(), "message": st.text()}))
    else:
        envelope["method"] = member(METHODS)
        if kind == "request":
            envelope["id"] = member(IDS, BAD_IDS)
        params = {
            key: member(good)
            for key, good in [
                ("name", st.sampled_from(["get_balance", "secret_tool"]) | st.text(max_size=4)),
                ("arguments", OBJECTS),
                ("uri", st.just("bank://customers/1")),
                ("protocolVersion", st.just(LEGACY)),
            ]
            if draw(st.booleans())
        }
        if draw(st.integers(0, 7)) != 7:
            envelope["params"] = member(st.just(params))
    if draw(st.integers(0, 7)) == 7:
        envelope[draw(st.sampled_from(["extra", "result", "method", "id", "params"]))] = draw(JSON_VALUES)
    return envelope


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(body=st.binary(max_size=300), legacy=st.booleans())
def test_random_bytes_only_ever_raise_mcp_refused(body: bytes, legacy: bool) -> None:
    headers = legacy_headers() if legacy else modern_headers("tools/call", "get_balance")
    try:
        parse_request("POST", headers, body)
    except McpRefused as error:
        refusal: McpRefused | None = error
    else:
        refusal = None
    if refusal is not None:
        assert 400 <= refusal.status < 500
        jsonrpc_message_adapter.validate_json(refusal.body())


@FUZZ
@given(
    http_method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "get"]),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "content-type",
                "accept",
                "mcp-protocol-version",
                "mcp-method",
                "mcp-name",
                "mcp-session-id",
                "content-length",
            ]
        ),
        st.text(max_size=20),
    ),
    body=st.binary(max_size=64),
)
def test_random_headers_only_ever_raise_mcp_refused(
    http_method: str, headers: dict[str, str], body: bytes
) -> None:
    with contextlib.suppress(McpRefused):
        parse_request(http_method, headers, body)


@FUZZ
@given(envelope=envelopes(), legacy=st.booleans())
def test_whatever_is_accepted_the_sdk_reads_the_same_way(envelope: dict[str, Any], legacy: bool) -> None:
    """Accepted => the server's own envelope models parse it, as the same kind, id and method."""
    body = json.dumps(envelope).encode()
    method = envelope.get("method")
    if legacy:
        headers = legacy_headers()
    else:
        if isinstance(envelope.get("params"), dict):
            envelope["params"]["_meta"] = META
            body = json.dumps(envelope).encode()
        name = envelope.get("params", {}).get("name") if isinstance(envelope.get("params"), dict) else None
        headers = modern_headers(
            method if isinstance(method, str) else "x", name if isinstance(name, str) else None
        )
    try:
        request = parse_request("POST", headers, body)
    except McpRefused:
        return
    [message] = request.messages
    raw = pydantic_core.from_json(body)
    try:
        sdk = jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError:  # pragma: no cover - would be a gateway looser than the server
        pytest.fail(f"gateway accepted what the SDK rejects: {body!r}")
    assert getattr(sdk, "method", None) == message.method
    assert getattr(sdk, "id", None) == message.id
    expected_kind = {"JSONRPCRequest": "request", "JSONRPCNotification": "notification"}
    assert expected_kind.get(type(sdk).__name__, "response") == message.kind
    if not legacy and message.kind == "request":
        assert isinstance(classify_inbound_request(raw, headers=headers), InboundModernRoute)
    if message.method == "tools/call":
        assert message.tool_name == raw["params"]["name"]
        assert dict(message.tool_arguments or {}) == (raw["params"].get("arguments") or {})


# --- what agentgateway judges a message on (mcp/session.rs, v1.4.1) ------------------------------

JUDGED_ON = [
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "summary"}}, {"prompt_name": "summary"}),
    (
        "completion/complete",
        {"ref": {"type": "ref/resource", "uri": "bank://x/{id}"}},
        {"resource_uri": "bank://x/{id}"},
    ),
    ("tasks/get", {"taskId": "t1"}, {"task_id": "t1"}),
    ("tasks/update", {"taskId": "t2"}, {"task_id": "t2"}),
    ("tasks/cancel", {"taskId": "t3"}, {"task_id": "t3"}),
    (
        "subscriptions/listen",
        {"notifications": {"resourceSubscriptions": ["a://1", "b://2"]}},
        {"subscribed_uris": ("a://1", "b://2")},
    ),
    ("subscriptions/listen", {"notifications": {}}, {"subscribed_uris": ()}),
]


@pytest.mark.parametrize(
    ("method", "params", "fields"), JUDGED_ON, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(JUDGED_ON)]
)
def test_what_each_judged_method_names(method: str, params: dict[str, Any], fields: dict[str, Any]) -> None:
    [message] = parse_request("POST", modern_headers(method), modern_body(method, params)).messages
    names = ("tool_name", "prompt_name", "resource_uri", "task_id")
    assert {n: getattr(message, n) for n in names if getattr(message, n) is not None} == {
        k: v for k, v in fields.items() if k != "subscribed_uris"
    }
    assert message.subscribed_uris == fields.get("subscribed_uris", ())


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("completion/complete", {"ref": {"type": "ref/other"}}),
        ("completion/complete", {"ref": {"type": "ref/resource", "name": "x"}}),
        ("tasks/get", {"taskId": ["t"]}),
        ("subscriptions/listen", {"notifications": {"resourceSubscriptions": "a://1"}}),
        ("subscriptions/listen", {"notifications": {"resourceSubscriptions": [1]}}),
        ("subscriptions/listen", {"notifications": []}),
    ],
)
def test_a_judged_method_without_a_judgeable_name_is_refused(method: str, params: dict[str, Any]) -> None:
    assert refused("POST", modern_headers(method), modern_body(method, params)).code == INVALID_PARAMS


@pytest.mark.parametrize("method", ["tasks/list", "tasks/result", "bank/drain", "server/discover", "ping"])
def test_agentgateway_serves_only_the_requests_it_knows(method: str) -> None:
    """agentgateway mcp/mod.rs is_known_client_request_method (v1.4.1)."""
    [message] = parse_request("POST", modern_headers(method), modern_body(method)).messages
    assert message.agentgateway_serves == (method in {"server/discover", "ping"})
    [note] = parse_request("POST", legacy_headers(), legacy_body(method, None, None)).messages
    assert note.agentgateway_serves  # a notification is no request, whatever its method
