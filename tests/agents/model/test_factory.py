"""ModelConfig -> client: keys from the spec or the environment; start-up errors that say how to fix them."""

from __future__ import annotations

import dataclasses

import pytest

from tests.agents.model.fakes import Fake, anthropic_app, anthropic_message, openai_app, openai_completion
from tests.serving import serving
from trustusbank.agents.model.anthropic_client import AnthropicClient
from trustusbank.agents.model.factory import check_model, client_for
from trustusbank.agents.model.openai_client import OpenAIChatClient
from trustusbank.agents.model.types import Message, ModelConfigError, ModelRequest
from trustusbank.manifests.kagent.spec import ModelSpec

CLAUDE = ModelSpec(
    config="trustusbank-bank-agents/claude",
    provider="anthropic",
    model="claude-sonnet-4-5",
    api_key_secret="kagent-anthropic",
    api_key_secret_key="ANTHROPIC_API_KEY",
)
HELLO = ModelRequest(model="", system="", messages=(Message(role="user", text="hello"),))


@pytest.mark.parametrize("env", [{}, {"ANTHROPIC_API_KEY": ""}, {"ANTHROPIC_API_KEY": " \n"}])
@pytest.mark.parametrize("check", [client_for, check_model])
def test_anthropic_without_a_key_fails_at_start_with_the_fix(env: dict[str, str], check: object) -> None:
    with pytest.raises(ModelConfigError) as caught:
        check(CLAUDE, env)  # type: ignore[operator]
    message = str(caught.value)
    assert "ModelConfig trustusbank-bank-agents/claude" in message
    assert "Secret 'kagent-anthropic' key 'ANTHROPIC_API_KEY' is missing or empty" in message
    assert (
        "kubectl create secret generic kagent-anthropic -n trustusbank-bank-agents "
        "--from-literal=ANTHROPIC_API_KEY=<your key>"
    ) in message
    assert "`export ANTHROPIC_API_KEY=<your key>` before `trustusbank up`" in message


def test_a_modelconfig_that_names_no_secret_is_told_to() -> None:
    spec = dataclasses.replace(CLAUDE, api_key_secret=None, api_key_secret_key=None)
    with pytest.raises(ModelConfigError, match="names no apiKeySecret") as caught:
        client_for(spec, {"ANTHROPIC_API_KEY": "sk-ant-unused"})  # no key name, so no env fallback
    assert "Set apiKeySecret: <secret> and apiKeySecretKey: ANTHROPIC_API_KEY" in str(caught.value)


async def test_anthropic_key_from_the_environment_reaches_the_api() -> None:
    fake = Fake(api_key="sk-ant-from-env")
    fake.answer(200, anthropic_message([{"type": "text", "text": "hi"}], "end_turn"))
    async with serving(anthropic_app(fake)) as url:
        spec = dataclasses.replace(CLAUDE, base_url=url, max_tokens=99, temperature=0.5)
        check_model(spec, {"ANTHROPIC_API_KEY": "sk-ant-from-env\n"})
        client = client_for(spec, {"ANTHROPIC_API_KEY": "sk-ant-from-env\n"})
        try:
            reply = await client.complete(HELLO)
        finally:
            await client.aclose()
    assert isinstance(client, AnthropicClient)
    assert reply.text == "hi"
    headers, body = fake.requests[0]
    assert headers["x-api-key"] == "sk-ant-from-env"  # trailing newline from a file-made Secret stripped
    assert body["model"] == "claude-sonnet-4-5"
    assert body["max_tokens"] == 99
    assert body["temperature"] == 0.5


def test_the_spec_key_wins_and_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    client = client_for(CLAUDE)
    assert client.provider == "anthropic"
    assert client._headers["x-api-key"] == "sk-ant-env"  # type: ignore[attr-defined]
    explicit = client_for(dataclasses.replace(CLAUDE, api_key="sk-ant-spec"))
    assert explicit._headers["x-api-key"] == "sk-ant-spec"  # type: ignore[attr-defined]
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ModelConfigError):
        client_for(CLAUDE)


async def test_openai_compatible_server_needs_no_key() -> None:
    fake = Fake(api_key=None)
    fake.answer(
        200, openai_completion({"role": "assistant", "content": "hello back"}, "stop", model="llama3.1")
    )
    async with serving(openai_app(fake)) as url:
        spec = ModelSpec(config="ns/ollama", provider="openai", model="llama3.1", base_url=f"{url}/v1")
        check_model(spec, {})
        client = client_for(spec, {})
        try:
            reply = await client.complete(HELLO)
        finally:
            await client.aclose()
    assert isinstance(client, OpenAIChatClient)
    assert reply.text == "hello back"
    assert "authorization" not in fake.requests[0][0]


def test_openai_itself_needs_a_key() -> None:
    spec = ModelSpec(
        config="ns/gpt",
        provider="openai",
        model="gpt-4o-mini",
        api_key_secret="oai",
        api_key_secret_key="OPENAI_API_KEY",
    )
    with pytest.raises(ModelConfigError, match=r"api\.openai\.com requires one") as caught:
        check_model(spec, {})
    assert "--from-literal=OPENAI_API_KEY=<your key>" in str(caught.value)
    explicit = dataclasses.replace(spec, base_url="https://api.openai.com/v1/")
    with pytest.raises(ModelConfigError, match=r"api\.openai\.com requires one"):
        check_model(explicit, {})
    client = client_for(spec, {"OPENAI_API_KEY": "sk-x"})
    assert isinstance(client, OpenAIChatClient)
    assert client.url == "https://api.openai.com/v1/chat/completions"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (ModelSpec(config="ns/g", provider="gemini", model="x"), "provider 'gemini' is not supported"),  # type: ignore[arg-type]
        (
            ModelSpec(config="ns/o", provider="openai", model="", base_url="http://m:8080/v1"),
            "spec.model is empty",
        ),
        (ModelSpec(config="ns/o", provider="openai", model="m", base_url="m:8080/v1"), "is not an http"),
        (
            ModelSpec(config="ns/a", provider="anthropic", model="c", base_url="ftp://x", api_key="k"),
            "is not an http",
        ),
    ],
)
def test_other_config_errors(spec: ModelSpec, problem: str) -> None:
    with pytest.raises(ModelConfigError, match=problem) as caught:
        check_model(spec, {})
    assert spec.config in str(caught.value)
