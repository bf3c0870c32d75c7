"""The scripted model's HTTP app: both wires over real sockets, with our own clients and with raw HTTP."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.serving import serving
from trustusbank.agents.model.anthropic_client import AnthropicClient
from trustusbank.agents.model.openai_client import OpenAIChatClient
from trustusbank.agents.model.types import (
    Message,
    ModelClient,
    ModelError,
    ModelReply,
    ModelRequest,
    ToolCall,
    ToolSpec,
    Usage,
)
from trustusbank.agents.model.wire import anthropic as anthropic_wire
from trustusbank.agents.model.wire import openai as openai_wire
from trustusbank.agents.model.wire import sse
from trustusbank.agents.scripted.http_app import FINGERPRINT, SIMULATION_HEADER, create_app

MODELS = ["gpt-4o-mini", "claude-sonnet-4-5"]
LOOKUP = ToolSpec(name="get_balance", description="Balance of one account")


class Teller:
    """A test model: calls the first tool it is offered with the user's words, then reports the result."""

    provider = "test"
    model = "teller"

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []
        self.closed = False

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        last = request.messages[-1]
        usage = Usage(input_tokens=len(request.messages), output_tokens=5)
        if last.role == "tool":
            outcome = "failed" if last.is_error else "returned"
            text = f"{last.tool_name} {outcome}: {last.text}"
            return ModelReply(text=text, tool_calls=(), model=self.model, stop_reason="end_turn", usage=usage)
        if request.tools:
            call = ToolCall(
                id=f"call_{len(self.requests)}", name=request.tools[0].name, arguments={"q": last.text}
            )
            return ModelReply(
                text="Let me check.",
                tool_calls=(call,),
                model=self.model,
                stop_reason="tool_use",
                usage=usage,
            )
        return ModelReply(
            text=f"You said: {last.text}", tool_calls=(), model=self.model, stop_reason="end_turn"
        )

    async def aclose(self) -> None:
        self.closed = True


class Broken(Teller):
    async def complete(self, request: ModelRequest) -> ModelReply:
        raise RuntimeError("the script has no step for this")


@pytest.fixture
async def teller() -> AsyncIterator[tuple[Teller, str]]:
    model = Teller()
    async with serving(create_app(model, served_model_names=MODELS)) as url:
        yield model, url
    assert model.closed  # the app closes its model on shutdown


def question(model: str) -> ModelRequest:
    return ModelRequest(
        model=model,
        system="You are a bank assistant.",
        messages=(Message(role="user", text="Balance of A?"),),
        tools=(LOOKUP,),
    )


def follow_up(request: ModelRequest, reply: ModelReply) -> ModelRequest:
    """The next request of an agent loop: the model's turn, then a failed tool result (no name given)."""
    call = reply.tool_calls[0]
    turn = Message(role="assistant", text=reply.text, tool_calls=reply.tool_calls)
    result = Message(role="tool", text="account locked", tool_call_id=call.id, is_error=True)
    return dataclasses.replace(request, messages=(*request.messages, turn, result))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_our_clients_run_a_tool_loop_against_it(teller: tuple[Teller, str], provider: str) -> None:
    model, url = teller
    client: ModelClient
    if provider == "openai":
        client = OpenAIChatClient(model="gpt-4o-mini", base_url=f"{url}/v1", api_key=None)
    else:
        client = AnthropicClient(model="claude-sonnet-4-5", base_url=url, api_key="ignored-by-the-simulation")
    try:
        first = await client.complete(question(client.model))
        second = await client.complete(follow_up(question(client.model), first))
    finally:
        await client.aclose()

    assert first.tool_calls == (ToolCall(id="call_1", name="get_balance", arguments={"q": "Balance of A?"}),)
    assert first.text == "Let me check."
    assert first.stop_reason == "tool_use"
    assert first.model == client.model  # echoes the request, not the script's own name
    assert first.response_id  # the app fills one in when the script gives none
    assert first.usage == Usage(input_tokens=1, output_tokens=5)
    # the tool's name and its failure crossed the wire and back
    assert second.text == "get_balance failed: account locked"
    assert second.stop_reason == "end_turn"
    seen = model.requests[-1]
    assert seen.system == "You are a bank assistant."
    assert seen.tools == (LOOKUP,)
    assert seen.messages[-1].tool_name == "get_balance"


async def test_openai_stream(teller: tuple[Teller, str]) -> None:
    _, url = teller
    body = openai_wire.request_to_wire(question("gpt-4o-mini"), stream=True)
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{url}/v1/chat/completions", json=body)
        plain = await http.post(f"{url}/v1/chat/completions", json={**body, "stream_options": None})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse.parse(response.text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["system_fingerprint"] for c in chunks} == {FINGERPRINT}
    reply = openai_wire.reply_from_stream(chunks)
    assert reply.text == "Let me check."
    assert reply.tool_calls == (ToolCall(id="call_1", name="get_balance", arguments={"q": "Balance of A?"}),)
    assert reply.stop_reason == "tool_use"
    assert reply.usage == Usage(input_tokens=1, output_tokens=5)
    assert reply.model == "gpt-4o-mini"
    # without stream_options.include_usage, no usage-only chunk (clients may index choices[0])
    plain_chunks = [json.loads(data) for _, data in sse.parse(plain.text)[:-1]]
    assert all(c["choices"] for c in plain_chunks)
    assert openai_wire.reply_from_stream(plain_chunks).usage == Usage()


async def test_anthropic_stream(teller: tuple[Teller, str]) -> None:
    _, url = teller
    body = anthropic_wire.request_to_wire(question("claude-sonnet-4-5"), stream=True)
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{url}/v1/messages", json=body, headers={"x-api-key": "anything"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [(name or "", json.loads(data)) for name, data in sse.parse(response.text)]
    assert events[0][0] == "message_start"
    assert events[-1][0] == "message_stop"
    reply = anthropic_wire.reply_from_stream(events)
    assert reply.text == "Let me check."
    assert reply.tool_calls == (ToolCall(id="call_1", name="get_balance", arguments={"q": "Balance of A?"}),)
    assert reply.stop_reason == "tool_use"
    assert reply.usage == Usage(input_tokens=1, output_tokens=5)
    assert reply.response_id.startswith("msg_")


async def test_models_and_health(teller: tuple[Teller, str]) -> None:
    _, url = teller
    async with httpx.AsyncClient() as http:
        openai_list = await http.get(f"{url}/v1/models", headers={"Authorization": "Bearer whatever"})
        anthropic_list = await http.get(f"{url}/v1/models", headers={"anthropic-version": "2023-06-01"})
        health = await http.get(f"{url}/healthz")
    assert openai_list.json()["object"] == "list"
    assert [m["id"] for m in openai_list.json()["data"]] == MODELS
    assert {m["object"] for m in openai_list.json()["data"]} == {"model"}
    assert [m["id"] for m in anthropic_list.json()["data"]] == MODELS
    assert anthropic_list.json()["has_more"] is False
    assert health.json()["simulation"] is True
    assert health.json()["models"] == MODELS
    assert {r.headers[SIMULATION_HEADER] for r in (openai_list, anthropic_list, health)} == {"scripted"}


async def test_a_reply_says_it_is_a_simulation(teller: tuple[Teller, str]) -> None:
    _, url = teller
    body = openai_wire.request_to_wire(question("gpt-4o-mini"))
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{url}/chat/completions", json=body)  # no /v1 prefix works too
    assert response.headers[SIMULATION_HEADER] == "scripted"
    assert response.json()["system_fingerprint"] == FINGERPRINT
    assert response.json()["id"].startswith("chatcmpl-")


OPENAI_BAD = [
    (b"{not json", 400, "invalid_request_error", "not valid JSON"),
    (
        b'{"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]}',
        400,
        "invalid_request_error",
        "messages[0].role",
    ),
    (
        b'{"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]}',
        404,
        "invalid_request_error",
        "gpt-5",
    ),
]
ANTHROPIC_BAD = [
    (b"[]", 400, "invalid_request_error", "body: expected a JSON object"),
    (
        b'{"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]}',
        400,
        "invalid_request_error",
        "max_tokens: required",
    ),
    (
        b'{"model": "claude-opus", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}',
        404,
        "not_found_error",
        "claude-opus",
    ),
]


def error_of(provider: str, body: Any) -> tuple[str, str]:
    if provider == "openai":
        assert set(body) == {"error"}
        return body["error"]["type"], body["error"]["message"]
    assert body["type"] == "error"
    return body["error"]["type"], body["error"]["message"]


@pytest.mark.parametrize(
    ("provider", "raw", "status", "kind", "text"),
    [*[("openai", *case) for case in OPENAI_BAD], *[("anthropic", *case) for case in ANTHROPIC_BAD]],
)
async def test_errors_in_each_providers_shape(
    teller: tuple[Teller, str], provider: str, raw: bytes, status: int, kind: str, text: str
) -> None:
    _, url = teller
    path = "/v1/chat/completions" if provider == "openai" else "/v1/messages"
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{url}{path}", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status
    got_kind, message = error_of(provider, response.json())
    assert got_kind == kind
    assert text in message
    if provider == "openai" and status == 404:
        assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_failing_model_is_a_500_our_clients_report(provider: str) -> None:
    async with serving(create_app(Broken(), served_model_names=MODELS)) as url:
        client: ModelClient
        if provider == "openai":
            client = OpenAIChatClient(model="gpt-4o-mini", base_url=f"{url}/v1", api_key=None)
            expected = "HTTP 500: server_error: the scripted model failed: the script has no step for this"
        else:
            client = AnthropicClient(model="claude-sonnet-4-5", base_url=url, api_key="x")
            expected = "HTTP 500: api_error: the scripted model failed: the script has no step for this"
        try:
            with pytest.raises(ModelError, match=expected):
                await client.complete(question(client.model))
        finally:
            await client.aclose()


async def test_an_unknown_model_reaches_our_client_as_a_404(teller: tuple[Teller, str]) -> None:
    model, url = teller
    client = AnthropicClient(model="claude-opus", base_url=url, api_key="x")
    try:
        with pytest.raises(
            ModelError, match="HTTP 404: not_found_error: The model `claude-opus` does not exist"
        ):
            await client.complete(question("claude-opus"))
    finally:
        await client.aclose()
    assert model.requests == []


async def test_no_served_names_means_any_model() -> None:
    async with serving(create_app(Teller(), served_model_names=[])) as url:
        client = OpenAIChatClient(model="anything-at-all", base_url=f"{url}/v1", api_key=None)
        try:
            reply = await client.complete(
                ModelRequest(model="", system="", messages=(Message(role="user", text="hi"),))
            )
        finally:
            await client.aclose()
    assert reply.text == "You said: hi"
    assert reply.model == "anything-at-all"
