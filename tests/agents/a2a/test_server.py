"""The agent as an A2A server: its card, its routes, protocol errors, memory, and start-up from env."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import httpx
import pytest
from a2a.client import A2ACardResolver

from tests.agents.a2a.support import (
    PlanModel,
    agent_spec,
    answer,
    ask,
    mcp,
    reply_text,
    running_agent,
    sub_agent,
)
from trustusbank.agents.a2a.card import agent_card
from trustusbank.agents.a2a.server import app_from_env
from trustusbank.agents.model.types import ModelConfigError, ModelReply, ModelRequest
from trustusbank.env import AGENT_URL
from trustusbank.manifests.kagent.spec import SPEC_ENV, ModelSpec
from trustusbank.paths import TRACES_ENV


def spec_with_tools():  # type: ignore[no-untyped-def]
    return agent_spec(
        mcp_servers=(mcp("account-mcp", "http://127.0.0.1:9", "get_balance", "get_profile"),),
        sub_agents=(sub_agent("fraud-bot", "http://127.0.0.1:9", "Checks for fraud."),),
    )


async def test_card_describes_the_agent_and_its_tools() -> None:
    with running_agent(spec_with_tools(), PlanModel(lambda _: answer("x"))) as agent:
        async with httpx.AsyncClient() as http:
            card = await A2ACardResolver(http, f"{agent.url}/").get_agent_card()
            raw = (await http.get(f"{agent.url}/.well-known/agent-card.json")).json()

    assert card.name == "support-bot"
    assert card.description == "support-bot, under test"
    assert card.version
    assert card.capabilities.streaming
    assert {(i.url, i.protocol_binding, i.protocol_version) for i in card.supported_interfaces} == {
        (f"{agent.url}/", "JSONRPC", "1.0"),
        (f"{agent.url}/", "JSONRPC", "0.3"),
    }
    assert {s.id: list(s.tags) for s in card.skills} == {
        "mcp:account-mcp": ["mcp", "account-mcp", "get_balance", "get_profile"],
        "agent:trustusbank-bank-agents/fraud-bot": ["agent", "trustusbank-bank-agents/fraud-bot"],
    }
    assert raw["url"] == f"{agent.url}/"  # v0.3 clients read the top-level url
    assert raw["protocolVersion"] == "0.3"


def test_card_url_defaults_to_the_agents_service() -> None:
    urls = {i.url for i in agent_card(agent_spec()).supported_interfaces}
    assert urls == {"http://support-bot.trustusbank-bank-agents.svc.cluster.local:8080/"}


def test_routes_and_protocol_errors() -> None:
    model = PlanModel(lambda _: answer("x"))
    with running_agent(agent_spec(), model) as agent, httpx.Client(base_url=agent.url) as http:
        health = http.get("/healthz")
        missing = http.get("/api/nothing-here")
        not_json = http.post("/", content=b"{oops")
        not_rpc = http.post("/", json={"id": 3, "method": "SendMessage"})
        unknown = http.post("/", json={"jsonrpc": "2.0", "id": 4, "method": "Explode", "params": {}})
        bad_params = http.post(
            "/",
            headers={"A2A-Version": "1.0"},
            json={
                "jsonrpc": "2.0",
                "id": 5,
                "method": "SendMessage",
                "params": {"message": {"role": 42}},
            },
        )
        no_task = http.post(
            "/",
            headers={"A2A-Version": "1.0"},
            json={"jsonrpc": "2.0", "id": 6, "method": "GetTask", "params": {"id": "no-such-task"}},
        )
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "agent": "trustusbank-bank-agents/support-bot",
    }
    assert missing.status_code == 404
    assert not_json.json()["error"]["code"] == -32700
    assert not_rpc.json()["error"]["code"] == -32600
    assert not_rpc.json()["id"] == 3
    assert unknown.json()["error"]["code"] == -32601
    assert unknown.json()["id"] == 4
    assert bad_params.json()["error"]["code"] == -32602
    assert no_task.json()["error"]["code"] == -32001  # A2A TaskNotFound
    assert model.requests == []


def test_v03_message_send_works() -> None:
    with running_agent(agent_spec(), PlanModel(lambda r: answer(f"you said {r.messages[-1].text}"))) as agent:
        response = httpx.post(
            f"{agent.url}/",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "message/send",
                "params": {
                    "message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "messageId": "m1"}
                },
            },
        )
    result = response.json()["result"]
    assert result["kind"] == "task"
    assert result["status"]["state"] == "completed"
    reply = next(a for a in result["artifacts"] if a["name"] == "reply")
    assert reply["parts"] == [{"kind": "text", "text": "you said hi"}]
    chain = next(a for a in result["artifacts"] if a["name"] == "tool-calls")
    assert chain["parts"][0]["kind"] == "data"
    assert chain["parts"][0]["data"]["steps"] == []


async def test_a_context_remembers_its_turns_and_only_its_own() -> None:
    def recall(request: ModelRequest) -> ModelReply:
        said = [m.text for m in request.messages if m.role == "user"]
        return answer(" / ".join(said))

    with running_agent(agent_spec(), PlanModel(recall)) as agent:
        first, _ = await ask(agent.url, "my name is Alice")
        second, _ = await ask(agent.url, "what is my name?", context_id=first.context_id)
        other, _ = await ask(agent.url, "who am I?")

    assert second.context_id == first.context_id
    assert reply_text(second) == "my name is Alice / what is my name?"
    assert reply_text(other) == "who am I?"


def test_message_without_text_is_rejected() -> None:
    model = PlanModel(lambda _: answer("x"))
    with running_agent(agent_spec(), model) as agent:
        response = httpx.post(
            f"{agent.url}/",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "message/send",
                "params": {
                    "message": {
                        "role": "user",
                        "parts": [{"kind": "data", "data": {"a": 1}}],
                        "messageId": "m",
                    }
                },
            },
        )
    assert response.json()["result"]["status"]["state"] == "rejected"
    assert model.requests == []


# --- start-up from the environment ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, f"{SPEC_ENV} is not set"),
        ("{not json", f"{SPEC_ENV} is not a valid agent spec"),
        ('{"name": "x"}', f"{SPEC_ENV} is not a valid agent spec"),
        ("/nonexistent/spec.json", "cannot read the spec file"),
    ],
)
def test_app_from_env_refuses_a_missing_or_invalid_spec(
    value: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(SPEC_ENV, raising=False)
    else:
        monkeypatch.setenv(SPEC_ENV, value)
    with pytest.raises(ValueError, match=message):
        app_from_env()


def fake_factory(monkeypatch: pytest.MonkeyPatch, error: Exception | None = None) -> list[ModelSpec]:
    asked: list[ModelSpec] = []

    def client_for(spec: ModelSpec) -> PlanModel:
        asked.append(spec)
        if error:
            raise error
        return PlanModel(lambda _: answer("from env"))

    module = types.ModuleType("trustusbank.agents.model.factory")
    module.client_for = client_for  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trustusbank.agents.model.factory", module)
    return asked


def test_app_from_env_stops_on_an_unusable_model(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_factory(monkeypatch, ModelConfigError("ModelConfig x/y: no API key in secret anthropic-key"))
    monkeypatch.setenv(SPEC_ENV, agent_spec().to_json())
    with pytest.raises(ModelConfigError, match="no API key"):
        app_from_env()


async def test_app_from_env_serves_the_spec_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = fake_factory(monkeypatch)
    spec_file = tmp_path / "agent.json"
    spec_file.write_text(agent_spec("triage-bot").to_json())
    monkeypatch.setenv(SPEC_ENV, str(spec_file))
    monkeypatch.setenv(TRACES_ENV, str(tmp_path / "traces"))
    monkeypatch.setenv(AGENT_URL.name, "http://triage.example:8080/")
    app = app_from_env()
    assert [s.model for s in asked] == ["plan-model-1"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
        card = (await http.get("/.well-known/agent-card.json")).json()
    assert card["name"] == "triage-bot"
    assert card["supportedInterfaces"][0]["url"] == "http://triage.example:8080/"
