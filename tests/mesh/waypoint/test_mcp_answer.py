"""read_answer: a backend's answer found by request id, replaced, and read back as the client reads it."""

from __future__ import annotations

import json

import pytest
from mcp.server._streamable_http_modern import _sse_event
from mcp_types import JSONRPCNotification, JSONRPCResponse

from tests.mesh.waypoint.test_mcp_filter import client_messages
from trustusbank.mesh.waypoint.mcp.answer import read_answer

ANSWER = {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "secret"}]}}
MASKED = {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "[quarantined]"}]}}


def test_json_unchanged_is_byte_for_byte_and_changed_is_the_replacement() -> None:
    body = json.dumps(ANSWER, indent=2).encode()
    answer = read_answer("tools/call", "application/json", body)
    assert answer.render() is body

    index = answer.response_to(7)
    assert index == 0
    answer.replace(index, MASKED)
    [read] = client_messages("application/json", answer.render())
    assert read.model_dump(by_alias=True, exclude_none=True) == MASKED


def test_ids_match_by_value_and_type() -> None:
    answer = read_answer("tools/call", "application/json", json.dumps(ANSWER).encode())
    assert answer.response_to("7") is None
    assert answer.response_to(8) is None


def test_a_batch_answer_is_searched_and_replaced_in_place() -> None:
    other = {"jsonrpc": "2.0", "id": 1, "result": {}}
    answer = read_answer("tools/call", "application/json", json.dumps([other, ANSWER]).encode())
    assert answer.batch
    index = answer.response_to(7)
    assert index == 1
    answer.replace(index, MASKED)
    assert json.loads(answer.render()) == [other, MASKED]


def test_sse_only_the_answering_event_changes() -> None:
    note = JSONRPCNotification(
        jsonrpc="2.0", method="notifications/message", params={"level": "info", "data": "x"}
    )
    response = JSONRPCResponse(jsonrpc="2.0", id=7, result=ANSWER["result"])
    body = _sse_event(note) + b": ping\r\n\r\n" + _sse_event(response)
    answer = read_answer("tools/call", "text/event-stream", body)

    index = answer.response_to(7)
    assert index == 1  # the notification is message 0, and is never an answer
    answer.replace(index, MASKED)
    first, second = client_messages("text/event-stream", answer.render())
    assert first == note
    assert second.model_dump(by_alias=True, exclude_none=True) == MASKED


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{"),
        ("text/plain", b"{}"),
        ("text/event-stream", b"data: {not json\n\n"),
        ("text/event-stream", b"\xef\xbb\xbfdata: {}\n\n"),
    ],
)
def test_what_does_not_parse_raises(content_type: str, body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError: the caller fails closed
        read_answer("tools/call", content_type, body)
