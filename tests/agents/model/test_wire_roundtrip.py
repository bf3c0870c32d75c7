"""Both wires carry every neutral request and reply there and back unchanged (property tests)."""

from __future__ import annotations

import json
from types import ModuleType

import pytest
from hypothesis import given, settings

from tests.agents.model.strategies import replies, requests
from trustusbank.agents.model.types import ModelReply, ModelRequest
from trustusbank.agents.model.wire import anthropic, openai, sse

WIRES = [pytest.param(openai, id="openai"), pytest.param(anthropic, id="anthropic")]


def through_json(value: object) -> object:
    """What the other side of a socket sees."""
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("wire", WIRES)
@settings(max_examples=150, deadline=None)
@given(request=requests, stream=...)
def test_request_round_trip(wire: ModuleType, request: ModelRequest, stream: bool) -> None:
    assert wire.request_from_wire(through_json(wire.request_to_wire(request, stream=stream))) == (
        request,
        stream,
    )


@pytest.mark.parametrize("wire", WIRES)
@settings(max_examples=150, deadline=None)
@given(reply=replies())
def test_reply_round_trip(wire: ModuleType, reply: ModelReply) -> None:
    assert wire.reply_from_wire(through_json(wire.reply_to_wire(reply))) == reply


@settings(max_examples=100, deadline=None)
@given(reply=replies())
def test_openai_stream_round_trip(reply: ModelReply) -> None:
    chunks = openai.reply_to_stream(reply)
    events = sse.parse(b"".join(sse.encode(c) for c in chunks).decode())
    assert openai.reply_from_stream([json.loads(data) for _, data in events]) == reply


@settings(max_examples=100, deadline=None)
@given(reply=replies())
def test_anthropic_stream_round_trip(reply: ModelReply) -> None:
    encoded = b"".join(sse.encode(data, event) for event, data in anthropic.reply_to_stream(reply)).decode()
    events = [(name or "", json.loads(data)) for name, data in sse.parse(encoded)]
    assert anthropic.reply_from_stream(events) == reply
