"""AccessPolicy at the agent: the decision rules, and the refusal as a caller and an auditor see it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from a2a.client import A2AClientError
from a2a.types import a2a_pb2 as a2a
from prometheus_client.parser import text_string_to_metric_families

from tests.agents.a2a.support import PlanModel, agent_spec, answer, ask, reply_text, running_agent
from trustusbank.agents.a2a.access_guard import decide, principal_matches
from trustusbank.manifests.kagent.spec import AccessRule, AgentSpec
from trustusbank.paths import LOGS_ENV

NS = "trustusbank-bank-agents"
TRIAGE = f"cluster.local/ns/{NS}/sa/triage-bot"
SUPPORT = f"cluster.local/ns/{NS}/sa/support-bot"
ALLOW_TRIAGE = AccessRule(policy=f"{NS}/fraud-bot-callers", action="ALLOW", principals=(TRIAGE,))


def enforced(*rules: AccessRule) -> AgentSpec:
    return agent_spec("fraud-bot", access=rules, access_enforced=True)


@pytest.mark.parametrize(
    ("pattern", "principal", "matches"),
    [
        ("*", SUPPORT, True),
        (SUPPORT, SUPPORT, True),
        (f"spiffe://{SUPPORT}", SUPPORT, True),
        (TRIAGE, SUPPORT, False),
        (f"cluster.local/ns/{NS}/*", SUPPORT, True),
        ("cluster.local/ns/trustusbank-bank-mcp/*", SUPPORT, False),
        ("*/sa/support-bot", SUPPORT, True),
        ("*/sa/triage-bot", SUPPORT, False),
    ],
)
def test_principal_matching_is_istio_style(pattern: str, principal: str, matches: bool) -> None:
    assert principal_matches(pattern, principal) is matches


def test_decisions() -> None:
    deny_support = AccessRule(policy=f"{NS}/no-support", action="DENY", principals=(SUPPORT,))
    allow_all = AccessRule(policy=f"{NS}/everyone", action="ALLOW", principals=("*",))
    groups = AccessRule(policy=f"{NS}/no-interns", action="DENY", user_groups=("interns",))

    assert decide(agent_spec(), None).allowed  # no AccessPolicy targets the agent
    assert decide(enforced(ALLOW_TRIAGE), TRIAGE).allowed
    refused = decide(enforced(ALLOW_TRIAGE), SUPPORT)
    assert not refused.allowed
    assert refused.policy == f"{NS}/fraud-bot-callers"
    anonymous = decide(enforced(allow_all), None)
    assert not anonymous.allowed
    assert anonymous.policy == "identity-required"
    denied = decide(enforced(allow_all, deny_support), SUPPORT)  # DENY wins over ALLOW
    assert not denied.allowed
    assert denied.policy == f"{NS}/no-support"
    assert decide(enforced(allow_all, deny_support), TRIAGE).allowed
    assert decide(enforced(), TRIAGE).policy == "default-deny"
    unverifiable = decide(enforced(allow_all, groups), TRIAGE)
    assert not unverifiable.allowed
    assert unverifiable.policy == f"{NS}/no-interns"


def metric(registry_text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(registry_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_allowed_caller_is_answered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    seen: list[str] = []

    def caller_of(ip: str) -> str:
        seen.append(ip)
        return TRIAGE

    with running_agent(
        enforced(ALLOW_TRIAGE), PlanModel(lambda _: answer("hello triage")), caller_of
    ) as agent:
        task, _ = await ask(agent.url, "hi")
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{agent.url}/metrics")).text

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    assert reply_text(task) == "hello triage"
    assert set(seen) == {"127.0.0.1"}
    assert metric(metrics, "kagent_accesspolicy_decisions_total", decision="allow") >= 2  # send + get
    assert metric(metrics, "kagent_accesspolicy_decisions_total", decision="deny") == 0


async def test_refused_caller_gets_403_a_jsonrpc_error_a_log_line_and_a_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    model = PlanModel(lambda _: answer("must not be reached"))
    with running_agent(enforced(ALLOW_TRIAGE), model, lambda _: SUPPORT) as agent:
        with pytest.raises(A2AClientError, match="403"):
            await ask(agent.url, "hi")
        http = httpx.AsyncClient()
        card = await http.get(f"{agent.url}/.well-known/agent-card.json")  # the card stays public
        raw = await http.post(
            f"{agent.url}/",
            json={
                "jsonrpc": "2.0",
                "id": "req-7",
                "method": "message/send",
                "params": {
                    "message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "messageId": "m1"}
                },
            },
        )
        metrics = (await http.get(f"{agent.url}/metrics")).text
        await http.aclose()

    assert card.status_code == 200
    assert card.json()["name"] == "fraud-bot"
    assert model.requests == []
    assert raw.status_code == 403
    body = raw.json()
    expected = f"AccessPolicy {NS}/fraud-bot-callers denies {SUPPORT} calling {NS}/fraud-bot"
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == "req-7"
    assert body["error"]["code"] == -32001
    assert body["error"]["message"] == expected
    assert body["error"]["data"]["principal"] == SUPPORT
    labels = {
        "agent": "fraud-bot",
        "namespace": NS,
        "source_principal": SUPPORT,
        "policy": f"{NS}/fraud-bot-callers",
    }
    assert metric(metrics, "kagent_accesspolicy_denied_total", **labels) == 2
    assert metric(metrics, "kagent_accesspolicy_decisions_total", decision="deny") == 2
    lines = [json.loads(line) for line in (tmp_path / f"agent-{NS}-fraud-bot.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    assert lines[-1]["message"] == expected
    assert lines[-1]["source.principal"] == SUPPORT
    assert lines[-1]["source.addr"] == "127.0.0.1"
    assert lines[-1]["policy"] == f"{NS}/fraud-bot-callers"
    assert lines[-1]["jsonrpc.method"] == "message/send"


@pytest.mark.parametrize("resolver", ["unknown", "broken", "absent"])
def test_unidentified_callers_are_refused(
    resolver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))

    def broken(_: str) -> str | None:
        raise RuntimeError("topology unreadable")

    caller_of = {"unknown": lambda _: None, "broken": broken, "absent": None}[resolver]
    everyone = AccessRule(policy=f"{NS}/everyone", action="ALLOW", principals=("*",))
    with running_agent(enforced(everyone), PlanModel(lambda _: answer("no")), caller_of) as agent:
        response = httpx.post(f"{agent.url}/", content=b"{not json")
        metrics = httpx.get(f"{agent.url}/metrics").text

    assert response.status_code == 403
    assert response.json()["id"] is None
    assert (
        response.json()["error"]["message"]
        == f"AccessPolicy identity-required denies an unidentified caller calling {NS}/fraud-bot"
    )
    assert metric(metrics, "kagent_accesspolicy_denied_total", source_principal="unknown") == 1


async def test_forwarding_headers_do_not_change_who_the_caller_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local caller naming an allowed pod in forwarding headers is still judged as itself.

    Served with the production uvicorn config: with uvicorn's default (trust `X-Forwarded-For`
    from 127.0.0.1) the guard would see triage-bot's address and answer.
    """
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    triage_ip = "127.30.1.7"  # the allowed caller's pod address; the test's client is 127.0.0.1
    seen: list[str] = []

    def caller_of(ip: str) -> str | None:
        seen.append(ip)
        return {triage_ip: TRIAGE}.get(ip)

    spoof = {
        "X-Forwarded-For": triage_ip,
        "X-Forwarded-Proto": "https",
        "Forwarded": f'for="{triage_ip}";proto=https',
        "X-Real-IP": triage_ip,
        "X-Forwarded-Client-Cert": f"By=spiffe://{TRIAGE};URI=spiffe://{TRIAGE}",
        "X-Client-IP": triage_ip,
    }
    model = PlanModel(lambda _: answer("must not be reached"))
    with running_agent(enforced(ALLOW_TRIAGE), model, caller_of) as agent:
        with pytest.raises(A2AClientError, match="403"):
            await ask(agent.url, "hi", headers=spoof)
        async with httpx.AsyncClient() as http:
            raw = await http.post(
                f"{agent.url}/",
                json={"jsonrpc": "2.0", "id": 9, "method": "SendMessage", "params": {}},
                headers=spoof,
            )

    assert model.requests == []
    assert raw.status_code == 403
    assert raw.json()["error"]["data"]["policy"] == "identity-required"
    assert set(seen) == {"127.0.0.1"}
    lines = [json.loads(line) for line in (tmp_path / f"agent-{NS}-fraud-bot.jsonl").read_text().splitlines()]
    assert [line["source.addr"] for line in lines] == ["127.0.0.1", "127.0.0.1"]
