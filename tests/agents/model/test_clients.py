"""The OpenAI and Anthropic clients against local fakes of each API, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.agents.model.fakes import (
    Fake,
    anthropic_app,
    anthropic_error,
    anthropic_message,
    openai_app,
    openai_completion,
    openai_error,
)
from tests.serving import refused_url, serving
from trustusbank.agents.model.anthropic_client import AnthropicClient
from trustusbank.agents.model.openai_client import OpenAIChatClient
from trustusbank.agents.model.types import (
    Message,
    ModelConfigError,
    ModelError,
    ModelReply,
    ModelRequest,
    ToolCall,
    ToolSpec,
    Usage,
)

BALANCE = ToolSpec(
    name="get_balance",
    description="Balance of one account",
    input_schema={"type": "object", "properties": {"account": {"type": "string"}}, "required": ["account"]},
)
CALLS = (
    ToolCall(id="call_a", name="get_balance", arguments={"account": "A"}),
    ToolCall(id="call_b", name="get_balance", arguments={"account": "B"}),
)
QUESTION = ModelRequest(
    model="whatever-the-loop-says",
    system="You are a bank assistant.",
    messages=(Message(role="user", text="Balances of A and B?"),),
    tools=(BALANCE,),
)
AFTER_TOOLS = ModelRequest(
    model="whatever-the-loop-says",
    system="You are a bank assistant.",
    messages=(
        *QUESTION.messages,
        Message(role="assistant", text="Looking both up.", tool_calls=CALLS),
        Message(role="tool", text="100.00 GBP", tool_call_id="call_a", tool_name="get_balance"),
        Message(
            role="tool", text="no such account", tool_call_id="call_b", tool_name="get_balance", is_error=True
        ),
    ),
    tools=(BALANCE,),
)


# -- OpenAI ---------------------------------------------------------------------------------------


@pytest.fixture
async def openai_fake() -> AsyncIterator[tuple[Fake, str]]:
    fake = Fake(api_key="sk-test")
    async with serving(openai_app(fake)) as url:
        yield fake, url


def openai_client(url: str, **kwargs: object) -> OpenAIChatClient:
    options: dict[str, object] = {
        "model": "gpt-4o-mini",
        "base_url": f"{url}/v1",
        "api_key": "sk-test",
        **kwargs,
    }
    return OpenAIChatClient(**options)  # type: ignore[arg-type]


async def test_openai_tool_call_then_answer(openai_fake: tuple[Fake, str]) -> None:
    fake, url = openai_fake
    client = openai_client(url, max_tokens=300, temperature=0.1)
    tool_calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
        for c in CALLS
    ]
    fake.answer(
        200, openai_completion({"role": "assistant", "content": None, "tool_calls": tool_calls}, "tool_calls")
    )
    fake.answer(
        200,
        openai_completion({"role": "assistant", "content": "A has 100.00 GBP; B does not exist."}, "stop"),
    )
    try:
        first = await client.complete(QUESTION)
        second = await client.complete(AFTER_TOOLS)
    finally:
        await client.aclose()

    assert first == ModelReply(
        text="",
        tool_calls=CALLS,
        model="gpt-4o-mini-2024-07-18",
        stop_reason="tool_use",
        usage=Usage(input_tokens=19, output_tokens=10),
        response_id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    )
    assert second.text == "A has 100.00 GBP; B does not exist."
    assert second.stop_reason == "end_turn"
    headers, body = fake.requests[-1]
    assert headers["authorization"] == "Bearer sk-test"
    # the client's configuration wins over what the loop put in the request
    assert body["model"] == "gpt-4o-mini"
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.1
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "tool"]
    assert body["messages"][-1]["content"].startswith("[tool error] ")


async def test_openai_compatible_server_without_a_key() -> None:
    fake = Fake(api_key=None)
    fake.answer(200, openai_completion({"role": "assistant", "content": "hi"}, "stop", model="llama3.1"))
    async with serving(openai_app(fake)) as url:
        client = openai_client(url, api_key=None, model="llama3.1")
        try:
            reply = await client.complete(QUESTION)
        finally:
            await client.aclose()
    assert reply.text == "hi"
    assert "authorization" not in fake.last_headers


async def test_openai_itself_gets_max_completion_tokens() -> None:
    """Newer OpenAI models refuse max_tokens; compatible servers know only it. (Mock transport.)"""
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=openai_completion({"role": "assistant", "content": "ok"}, "stop"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = OpenAIChatClient(model="gpt-5", api_key="sk-test", max_tokens=77, http=http)
        await client.complete(QUESTION)
    assert seen[0]["max_completion_tokens"] == 77
    assert "max_tokens" not in seen[0]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            429,
            openai_error("Rate limit reached for gpt-4o-mini", "requests", "rate_limit_exceeded"),
            "HTTP 429: rate_limit_exceeded: Rate limit reached",
        ),
        (
            500,
            openai_error("The server had an error", "server_error"),
            "HTTP 500: server_error: The server had an error",
        ),
        (502, b"<html>Bad Gateway</html>", "HTTP 502: <html>Bad Gateway</html>"),
        (200, b'{"id": "chatcmpl-1", "choices": [', "not JSON"),
        (200, {"id": "chatcmpl-1", "object": "chat.completion"}, "choices: required"),
    ],
)
async def test_openai_errors(openai_fake: tuple[Fake, str], status: int, body: object, expected: str) -> None:
    fake, url = openai_fake
    fake.answer(status, body)
    client = openai_client(url)
    try:
        with pytest.raises(ModelError, match=expected):
            await client.complete(QUESTION)
    finally:
        await client.aclose()


async def test_openai_wrong_key_names_status_and_url(openai_fake: tuple[Fake, str]) -> None:
    _, url = openai_fake
    client = openai_client(url, api_key="sk-wrong")
    try:
        with pytest.raises(ModelError) as caught:
            await client.complete(QUESTION)
    finally:
        await client.aclose()
    assert f"{url}/v1/chat/completions answered HTTP 401: invalid_api_key: Incorrect API key" in str(
        caught.value
    )


async def test_openai_unreachable_names_the_url() -> None:
    sock, url = refused_url()
    client = openai_client(url)
    try:
        with pytest.raises(ModelError, match=f"cannot reach {url}/v1/chat/completions: ConnectError"):
            await client.complete(QUESTION)
    finally:
        await client.aclose()
        sock.close()


# -- Anthropic ------------------------------------------------------------------------------------


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[tuple[Fake, str]]:
    fake = Fake(api_key="sk-ant-test")
    async with serving(anthropic_app(fake)) as url:
        yield fake, url


def anthropic_client(url: str, **kwargs: object) -> AnthropicClient:
    options: dict[str, object] = {
        "model": "claude-sonnet-4-5",
        "base_url": url,
        "api_key": "sk-ant-test",
        **kwargs,
    }
    return AnthropicClient(**options)  # type: ignore[arg-type]


async def test_anthropic_tool_use_then_answer(anthropic_fake: tuple[Fake, str]) -> None:
    fake, url = anthropic_fake
    client = anthropic_client(url, max_tokens=300)
    tool_use = [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in CALLS]
    fake.answer(200, anthropic_message([{"type": "text", "text": "Looking both up."}, *tool_use], "tool_use"))
    fake.answer(200, anthropic_message([{"type": "text", "text": "A has 100.00 GBP."}], "end_turn"))
    try:
        first = await client.complete(QUESTION)
        second = await client.complete(AFTER_TOOLS)
    finally:
        await client.aclose()

    assert first == ModelReply(
        text="Looking both up.",
        tool_calls=CALLS,
        model="claude-sonnet-4-5-20250929",
        stop_reason="tool_use",
        usage=Usage(input_tokens=2095, output_tokens=503),
        response_id="msg_013Zva2CMHLNnXjNJJKqJ2EF",
    )
    assert second.text == "A has 100.00 GBP."
    assert second.stop_reason == "end_turn"
    headers, body = fake.requests[-1]
    assert headers["x-api-key"] == "sk-ant-test"
    assert headers["anthropic-version"] == "2023-06-01"
    assert body["model"] == "claude-sonnet-4-5"
    assert body["max_tokens"] == 300
    assert body["system"] == "You are a bank assistant."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_anthropic_base_url_may_end_in_v1(anthropic_fake: tuple[Fake, str]) -> None:
    fake, url = anthropic_fake
    fake.answer(200, anthropic_message([{"type": "text", "text": "ok"}], "end_turn"))
    client = anthropic_client(f"{url}/v1/")
    try:
        assert (await client.complete(QUESTION)).text == "ok"
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (529, anthropic_error("Overloaded", "overloaded_error"), "HTTP 529: overloaded_error: Overloaded"),
        (
            400,
            anthropic_error("prompt is too long: 210000 tokens > 200000 maximum"),
            "invalid_request_error: prompt is too long",
        ),
        (200, b"not json at all", "not JSON"),
        (
            200,
            {"type": "message", "role": "assistant", "content": [{"type": "tool_use", "id": "t"}]},
            r"content\[0\].name: required",
        ),
    ],
)
async def test_anthropic_errors(
    anthropic_fake: tuple[Fake, str], status: int, body: object, expected: str
) -> None:
    fake, url = anthropic_fake
    fake.answer(status, body)
    client = anthropic_client(url)
    try:
        with pytest.raises(ModelError, match=expected):
            await client.complete(QUESTION)
    finally:
        await client.aclose()


async def test_anthropic_wrong_key(anthropic_fake: tuple[Fake, str]) -> None:
    _, url = anthropic_fake
    client = anthropic_client(url, api_key="sk-ant-wrong")
    try:
        with pytest.raises(ModelError, match="HTTP 401: authentication_error: invalid x-api-key"):
            await client.complete(QUESTION)
    finally:
        await client.aclose()


async def test_anthropic_unreachable_names_the_url() -> None:
    sock, url = refused_url()
    client = anthropic_client(url)
    try:
        with pytest.raises(ModelError, match=f"cannot reach {url}/v1/messages"):
            await client.complete(QUESTION)
    finally:
        await client.aclose()
        sock.close()


def test_anthropic_refuses_to_start_without_a_key() -> None:
    with pytest.raises(ModelConfigError, match="no API key"):
        AnthropicClient(model="claude-sonnet-4-5", api_key="")
