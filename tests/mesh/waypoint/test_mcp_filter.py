"""filter_tools_list removes disallowed tools from real tools/list responses, JSON and SSE.

The responses come from a real `MCPServer` (the 2026-07-28 JSON answer, the 2025-11-25 SSE and
JSON-response answers); the filtered bytes are read back with the MCP client's own SSE decoder
and message adapter, and a filtering ASGI layer in front of the real server shows the real
`Client.list_tools()` no longer sees the hidden tool in either protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from httpx2._sse import _SSEParser
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server._streamable_http_modern import _sse_event
from mcp_types import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)

from tests.mesh.waypoint.test_mcp_parse import LiveServer, drive_clients
from trustusbank.mesh.waypoint.mcp import McpRefused, filter_list, filter_tools_list, parse_request

HIDDEN = "secret_tool"


def allowed(name: str) -> bool:
    return name != HIDDEN


def client_messages(content_type: str, body: bytes) -> list[Any]:
    """What the MCP client reads from a response body (mcp/client/streamable_http.py)."""
    if content_type.startswith("application/json"):
        return [jsonrpc_message_adapter.validate_json(body, by_name=False)]
    parser = _SSEParser()
    events = [*parser.decode(body.decode()), *parser.flush()]
    return [
        jsonrpc_message_adapter.validate_json(event.data, by_name=False)
        for event in events
        if event.event == "message" and event.data
    ]


def tool_names(message: Any) -> list[str]:
    return [tool["name"] for tool in message.result["tools"]]


# --- real server responses -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sse", "json"])
def recorded(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    server = LiveServer(json_response=request.param == "json")
    server.start()
    try:
        asyncio.run(drive_clients(server, elicit=False))
        yield server
    finally:
        server.stop()


def tools_list_responses(server: LiveServer) -> list[tuple[str, str, bytes]]:
    found = []
    for exchange in server.exchanges:
        if exchange.method == "POST" and json.loads(exchange.body).get("method") == "tools/list":
            found.append((exchange.label, exchange.response_headers["content-type"], exchange.response_body))
    return found


def test_real_tools_list_responses_are_filtered(recorded: LiveServer) -> None:
    responses = tools_list_responses(recorded)
    assert {label for label, _, _ in responses} == {"modern", "legacy"}
    content_types = {content_type for _, content_type, _ in responses}
    assert content_types == (
        {"application/json"} if recorded.json_response else {"application/json", "text/event-stream"}
    )
    for _, content_type, body in responses:
        [before] = client_messages(content_type, body)
        assert HIDDEN in tool_names(before)
        filtered = filter_tools_list(content_type, body, allowed)
        [after] = client_messages(content_type, filtered)
        assert tool_names(after) == [name for name in tool_names(before) if name != HIDDEN]
        assert after.id == before.id
        kept = {k: v for k, v in before.result.items() if k != "tools"}
        assert {k: v for k, v in after.result.items() if k != "tools"} == kept
        original = {tool["name"]: tool for tool in before.result["tools"]}
        assert all(tool == original[tool["name"]] for tool in after.result["tools"])


def test_nothing_removed_returns_json_byte_for_byte(recorded: LiveServer) -> None:
    for _, content_type, body in tools_list_responses(recorded):
        if content_type == "application/json":
            assert filter_tools_list(content_type, body, lambda name: True) is body


def test_everything_removed(recorded: LiveServer) -> None:
    for _, content_type, body in tools_list_responses(recorded):
        [after] = client_messages(content_type, filter_tools_list(content_type, body, lambda name: False))
        assert after.result["tools"] == []


# --- SSE streams carrying several messages ------------------------------------------------------

TOOLS = [{"name": "get_balance", "inputSchema": {"type": "object"}}, {"name": HIDDEN, "inputSchema": {}}]


def tools_response(request_id: int = 7) -> JSONRPCResponse:
    return JSONRPCResponse(jsonrpc="2.0", id=request_id, result={"tools": TOOLS, "nextCursor": "c2"})


def test_modern_sse_stream_with_notifications() -> None:
    """The 2026 entry's own frames (_sse_event) with a keepalive, a log notification and the answer."""
    note = JSONRPCNotification(
        jsonrpc="2.0", method="notifications/message", params={"level": "info", "data": "x"}
    )
    body = _sse_event(note) + b": ping\r\n\r\n" + _sse_event(tools_response())
    filtered = filter_tools_list("text/event-stream", body, allowed)
    first, second = client_messages("text/event-stream", filtered)
    assert first == note
    assert isinstance(second, JSONRPCResponse)
    assert tool_names(second) == ["get_balance"]
    assert second.result["nextCursor"] == "c2"


def test_sse_other_messages_untouched() -> None:
    elicit = JSONRPCRequest(jsonrpc="2.0", id=0, method="elicitation/create", params={"tools": TOOLS})
    error = JSONRPCError.model_validate(
        {"jsonrpc": "2.0", "id": 3, "error": {"code": -32601, "message": "no"}}
    )
    body = b"id: e1\r\nretry: 500\r\ndata:\r\n\r\n" + _sse_event(elicit) + _sse_event(error)
    filtered = filter_tools_list("text/event-stream", body, allowed)
    parser = _SSEParser()
    events = [*parser.decode(filtered.decode()), *parser.flush()]
    assert [(e.id, e.retry) for e in events] == [("e1", 500), ("e1", None), ("e1", None)]
    assert {e.event for e in events} == {"message"}
    assert events[0].data == ""
    assert client_messages("text/event-stream", filtered) == [elicit, error]


def test_sse_line_endings_are_read_as_the_client_reads_them() -> None:
    """Lone CR, LF and CRLF all end lines; multi-line data is joined with newlines."""
    response = json.dumps(tools_response().model_dump(mode="json"), indent=1)
    data = "".join(f"data: {line}\r" for line in response.splitlines())
    body = (":comment\n" + "event: message\n" + data + "\r\n").encode()
    filtered = filter_tools_list("text/event-stream; charset=utf-8", body, allowed)
    [after] = client_messages("text/event-stream", filtered)
    assert tool_names(after) == ["get_balance"]


def test_sse_non_message_events_are_left_alone() -> None:
    """The client ignores events of other types, so their payload is not judged."""
    body = b"event: other\ndata: not json\n\n" + _sse_event(tools_response())
    filtered = filter_tools_list("text/event-stream", body, allowed)
    assert b"event: other\r\ndata: not json\r\n\r\n" in filtered
    [after] = client_messages("text/event-stream", filtered)
    assert tool_names(after) == ["get_balance"]


def test_jsonrpc_error_response_is_untouched() -> None:
    body = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}'
    assert filter_tools_list("application/json", body, allowed) is body


# --- fail closed -------------------------------------------------------------------------------

VALID = tools_response().model_dump_json(by_alias=True).encode()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("application/json", VALID[:-1], id="truncated"),
        pytest.param("application/json", b"\xef\xbb\xbf" + VALID, id="bom"),
        pytest.param(
            "application/json", VALID.replace(b"get_balance", b"get_\xffbalance"), id="invalid-utf8"
        ),
        pytest.param(
            "application/json",
            b'{"jsonrpc":"2.0","id":1,"result":{"tools":[],"tools":[{"name":"secret_tool"}]}}',
            id="duplicate-tools",
        ),
        pytest.param(
            "application/json",
            b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get_balance","name":"secret_tool"}]}}',
            id="duplicate-name",
        ),
        pytest.param("application/json", b'{"jsonrpc":"2.0","id":1,"result":{}}', id="no-tools"),
        pytest.param(
            "application/json", b'{"jsonrpc":"2.0","id":1,"result":{"tools":{}}}', id="tools-object"
        ),
        pytest.param(
            "application/json", b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"n":1}]}}', id="nameless"
        ),
        pytest.param(
            "application/json", b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":1}]}}', id="name-int"
        ),
        pytest.param("application/json", b"[" + VALID + b"]", id="batch"),
        pytest.param("application/json", b'{"id":1,"result":{"tools":[]}}', id="not-jsonrpc"),
        pytest.param("application/json", b'{"jsonrpc":"2.0","id":1}', id="neither"),
        pytest.param(
            "application/json", b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"error":{}}', id="both"
        ),
        pytest.param("text/html", VALID, id="content-type"),
        pytest.param("application/json; charset=latin-1", VALID, id="charset"),
        pytest.param("text/event-stream", b"data: " + VALID[:-1] + b"\n\n", id="sse-truncated-json"),
        pytest.param("text/event-stream", b"data: " + VALID, id="sse-unterminated-event"),
        pytest.param("text/event-stream", b"data: " + VALID + b"\n", id="sse-event-without-blank-line"),
        pytest.param("text/event-stream", b"data: " + VALID + b"\n\ndata: {", id="sse-trailing-partial-line"),
        pytest.param("text/event-stream", b"\xef\xbb\xbfdata: " + VALID + b"\n\n", id="sse-bom"),
        pytest.param("text/event-stream", b"data: \xff\n\n", id="sse-invalid-utf8"),
        pytest.param("text/event-stream", b"data: [1]\n\n", id="sse-batch"),
        pytest.param("text/event-stream", b"data:\ndata:\n\n", id="sse-blank-data"),
    ],
)
def test_unparseable_responses_raise_value_error(content_type: str, body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError: the caller fails closed
        filter_tools_list(content_type, body, allowed)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/event-stream"]))
def test_random_bytes_only_ever_raise_value_error(body: bytes, content_type: str) -> None:
    with contextlib.suppress(ValueError):
        filter_tools_list(content_type, body, allowed)


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.text(min_size=1, max_size=8), max_size=6),
    hidden=st.sets(st.text(min_size=1, max_size=8), max_size=3),
)
def test_filter_keeps_exactly_the_allowed_tools(names: list[str], hidden: set[str]) -> None:
    tools = [{"name": name, "inputSchema": {"type": "object"}} for name in names]
    response = JSONRPCResponse(jsonrpc="2.0", id=1, result={"tools": tools})
    for content_type, body in [
        ("application/json", response.model_dump_json(by_alias=True).encode()),
        ("text/event-stream", _sse_event(response)),
    ]:
        [after] = client_messages(
            content_type, filter_tools_list(content_type, body, lambda n: n not in hidden)
        )
        assert tool_names(after) == [name for name in names if name not in hidden]


# --- end to end: a filtering layer in front of the real server ----------------------------------


def filtering(app: Any) -> Any:
    """The gateway's job in miniature: parse, refuse or forward, and filter tools/list answers."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        received = []
        body = b""
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            request = parse_request(scope["method"], headers, body)
        except McpRefused as refused:
            await send({"type": "http.response.start", "status": refused.status, "headers": []})
            await send({"type": "http.response.body", "body": refused.body()})
            return

        async def replay() -> Any:
            return received.pop(0) if received else await receive()

        if not any(message.method == "tools/list" for message in request.messages):
            await app(scope, replay, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def filtering_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            answer = b"".join(chunks)
            content_type = dict(start["headers"]).get(b"content-type", b"").decode()
            if start["status"] == 200:
                answer = filter_tools_list(content_type, answer, allowed)
            kept = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers = [*kept, (b"content-length", str(len(answer)).encode())]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": answer, "more_body": False})

        await app(scope, replay, filtering_send)

    return middleware


@pytest.mark.parametrize("json_response", [False, True], ids=["sse", "json"])
def test_real_client_behind_the_filter_never_sees_the_hidden_tool(json_response: bool) -> None:
    server = LiveServer(json_response=json_response, wrap=filtering)
    server.start()

    async def use() -> dict[str, list[str]]:
        seen = {}
        for mode in ("auto", "legacy"):
            async with Client(server.url, mode=mode) as client:
                seen[mode] = [tool.name for tool in (await client.list_tools()).tools]
                assert not (await client.call_tool("get_balance", {"customer_id": "12345"})).is_error
        return seen

    try:
        seen = asyncio.run(use())
    finally:
        server.stop()
    for names in seen.values():
        assert "get_balance" in names
        assert HIDDEN not in names


# --- every list, as agentgateway filters it (mcp/handler.rs merge_*, v1.4.1) ----------------------

EVERY_LIST = [
    ("tools/list", "tools", "name"),
    ("prompts/list", "prompts", "name"),
    ("resources/list", "resources", "uri"),
    ("resources/templates/list", "resourceTemplates", "uriTemplate"),
]


@pytest.mark.parametrize(("method", "member", "key"), EVERY_LIST, ids=[row[0] for row in EVERY_LIST])
def test_every_list_kind_is_filtered_on_its_name(method: str, member: str, key: str) -> None:
    items = [{key: "keep", "x": 1}, {key: HIDDEN}, {key: "keep-too"}]
    response = JSONRPCResponse(jsonrpc="2.0", id=2, result={member: items, "nextCursor": "n"})
    for content_type, body in [
        ("application/json", response.model_dump_json(by_alias=True).encode()),
        ("text/event-stream", _sse_event(response)),
    ]:
        [after] = client_messages(content_type, filter_list(method, content_type, body, allowed))
        assert after.result == {member: [items[0], items[2]], "nextCursor": "n"}
        bad = {"jsonrpc": "2.0", "id": 2, "result": {member: [{key: 1}]}}
        with pytest.raises(ValueError, match=key):
            filter_list(method, "application/json", json.dumps(bad).encode(), allowed)
        with pytest.raises(ValueError, match=member):
            filter_list(method, "application/json", b'{"jsonrpc":"2.0","id":2,"result":{}}', allowed)


def test_a_method_that_is_no_list_is_not_filtered() -> None:
    with pytest.raises(ValueError, match="not a filtered list"):
        filter_list("tools/call", "application/json", VALID, allowed)
