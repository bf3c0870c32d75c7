"""chatbot: the A2A proxy carries a real a2a-sdk client to a real agent, and the page shows data as text."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
from collections.abc import Iterator
from importlib.resources import files

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError
from a2a.helpers.proto_helpers import get_artifact_text, get_data_parts
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, TaskState
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from tests.workloads.chatbot.helpers import (
    CHAIN,
    DENY_MESSAGE,
    NS,
    AgentLog,
    Stack,
    echo_agent,
    run_stack,
    start,
)
from trustusbank.env import CHATBOT_AGENT, CHATBOT_UPSTREAM
from trustusbank.workloads.chatbot.app import create_app_from_env
from trustusbank.workloads.chatbot.card import rewrite_card
from trustusbank.workloads.errors import WorkloadConfigError

WORKING = TaskState.TASK_STATE_WORKING
PAGE = files("trustusbank.workloads.chatbot").joinpath("page.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    yield from run_stack()


def _message(text: str, context_id: str | None = None) -> SendMessageRequest:
    return SendMessageRequest(
        message=Message(
            role=Role.ROLE_USER, message_id=f"m-{text}", parts=[Part(text=text)], context_id=context_id
        )
    )


async def test_card_through_the_proxy_points_back_at_the_proxy(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, stack.proxy()).get_agent_card()
    assert card.name == "support-bot"
    assert [(i.url, i.protocol_binding) for i in card.supported_interfaces] == [(stack.proxy(), "JSONRPC")]


async def test_send_message_through_the_proxy(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, stack.proxy()).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
        [event] = [e async for e in client.send_message(_message("what is my balance?"))]
        task = event.task
        [again] = [e async for e in client.send_message(_message("and in dollars?", task.context_id))]
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    artifacts = {a.name: a for a in task.artifacts}
    assert get_artifact_text(artifacts["reply"]) == "turn 1: you said what is my balance?"
    [chain] = get_data_parts(artifacts["tool-calls"].parts)
    assert chain["steps"][1]["steps"][0]["name"] == CHAIN[1]["steps"][0]["name"]
    assert chain["steps"][1]["steps"][0]["is_error"] is True
    assert again.task.context_id == task.context_id
    assert get_artifact_text(again.task.artifacts[0]) == "turn 2: you said and in dollars?"


async def test_streaming_is_relayed_as_it_happens(stack: Stack) -> None:
    stack.agent.gate.clear()
    events = []
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, stack.proxy()).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)
        async for event in client.send_message(_message("gate")):
            events.append(event)
            if (
                event.HasField("status_update")
                and event.status_update.status.state == TaskState.TASK_STATE_WORKING
            ):
                stack.agent.gate.set()  # only possible if this event arrived before the task finished
    replies = [get_artifact_text(e.artifact_update.artifact) for e in events if e.HasField("artifact_update")]
    assert "turn 1: you said gate released=True" in replies
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


def _send(text: str) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": {"messageId": f"h-{text}", "role": "ROLE_USER", "parts": [{"text": text}]}},
    }


def test_hop_by_hop_and_identity_claiming_headers_stay_and_trace_context_travels(stack: Stack) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    claims = {
        "x-forwarded-for": "127.30.1.7",
        "x-forwarded-host": "support-bot.trustusbank-bank-agents",
        "forwarded": "for=127.30.1.7",
        "x-real-ip": "127.30.1.7",
        "x-forwarded-client-cert": "URI=spiffe://cluster.local/ns/trustusbank-bank-agents/sa/triage-bot",
        "x-spiffe-id": "spiffe://cluster.local/ns/trustusbank-bank-agents/sa/triage-bot",
        "x-client-cert": "-----BEGIN CERTIFICATE-----",
    }
    response = httpx.post(
        stack.proxy(),
        json=_send("headers"),
        headers={
            "A2A-Version": "1.0",
            "traceparent": traceparent,
            "connection": "keep-alive, x-hop-secret",
            "x-hop-secret": "1",
            "proxy-authorization": "Basic c2VjcmV0",
            "x-end-to-end": "kept",
            **claims,
        },
    )
    assert response.status_code == 200
    seen = {k.lower(): v for k, v in stack.agent.headers[-1].items()}
    assert seen["traceparent"] == traceparent
    assert seen["x-end-to-end"] == "kept"
    assert "x-hop-secret" not in seen
    assert "proxy-authorization" not in seen
    assert not claims.keys() & seen.keys(), "who the caller is, is the mesh's to say"
    assert seen["host"].startswith("127.0.0.1:")  # the agent's own host, not the chatbot's


@pytest.mark.parametrize(
    "path",
    [
        "/api/a2a/trustusbank-bank-mcp/account-mcp/mcp",
        "/api/a2a/trustusbank-bank-mcp/account-mcp/",
        "/api/a2a/trustusbank-observability/alert-evaluator/.well-known/agent-card.json",
        f"/api/a2a/{NS}/triage-bot/",  # an agent, but not one this chatbot was given
        f"/api/a2a/{NS}/triage-bot/.well-known/agent-card.json",
    ],
)
def test_only_the_configured_agents_are_reached(stack: Stack, path: str) -> None:
    before = list(stack.agent.other)
    for response in (httpx.get(stack.chatbot + path), httpx.post(stack.chatbot + path, json=_send("x"))):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": "the chatbot reaches only the agents it is configured for"}
    assert stack.agent.other == before


@pytest.mark.parametrize(
    ("method", "rest"),
    [
        ("GET", "metrics"),
        ("GET", "healthz"),
        ("POST", "metrics"),
        ("GET", "headers"),
        ("POST", "mcp"),
        ("GET", ""),  # the JSON-RPC endpoint takes POST only
        ("POST", ".well-known/agent-card.json"),
        ("GET", ".well-known/agent-card.json/x"),
        ("GET", "v1/card"),  # HTTP+JSON: not a binding the agents serve, so not relayed
        ("POST", "message:send"),
    ],
)
def test_only_a2a_endpoints_of_an_agent_are_reached(stack: Stack, method: str, rest: str) -> None:
    before = list(stack.agent.other)
    response = httpx.request(method, stack.proxy() + rest, json=_send("x") if method == "POST" else None)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json() == {  # the same words whatever was asked: nothing of it echoed
        "error": "not an A2A endpoint: the agent card (GET) or JSON-RPC (POST to the base)"
    }
    assert stack.agent.other == before, "the agent saw a request that is not A2A"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/a2a/{NS}/support-bot/../x",
        f"/api/a2a/{NS}/support-bot/./metrics",
        f"/api/a2a/{NS}/support-bot/../../trustusbank-bank-mcp/account-mcp/mcp",
        f"/api/a2a/{NS}/support-bot/%2e%2e/metrics",
    ],
)
def test_dot_segments_sent_as_they_are_are_refused(stack: Stack, path: str) -> None:
    """httpx would normalise `..` away before sending; http.client sends the path verbatim."""
    host, port = stack.chatbot.removeprefix("http://").split(":")
    before = list(stack.agent.other)
    for method in ("GET", "POST"):
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request(method, path, body=b"{}", headers={"content-type": "application/json"})
            response = connection.getresponse()
            body = json.loads(response.read())
        finally:
            connection.close()
        assert response.status == 400
        assert body == {"error": "path must not contain '.' or '..' segments"}
    assert stack.agent.other == before


def test_send_carries_traceparent_to_the_agent(stack: Stack) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": {"messageId": "t1", "role": "ROLE_USER", "parts": [{"text": "trace me"}]}},
    }
    response = httpx.post(
        stack.proxy(), json=body, headers={"A2A-Version": "1.0", "traceparent": traceparent}
    )
    assert response.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert stack.agent.headers[-1]["traceparent"] == traceparent


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/api/a2a/Bank_Agents/support-bot/", "namespace"),
        ("/api/a2a/trustusbank-bank-agents/%3Cscript%3Ealert(1)%3C%2Fscript%3E/", "agent"),
        ("/api/a2a/trustusbank-bank-agents/-bot/", "agent"),
        (f"/api/a2a/trustusbank-bank-agents/{'a' * 64}/", "agent"),
        ("/api/a2a/trustusbank-bank-agents/support-bot/%2E%2E/%2E%2E/x", "path"),
    ],
)
def test_bad_names_are_refused_without_echo(stack: Stack, path: str, what: str) -> None:
    for response in (httpx.get(stack.chatbot + path), httpx.post(stack.chatbot + path, json={})):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert what in response.json()["error"]
        assert "<" not in response.text


async def test_agent_down_is_a_502_naming_it(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(stack.proxy("gone-bot") + ".well-known/agent-card.json")
        assert response.status_code == 502
        assert response.json()["agent"] == f"{NS}/gone-bot"
        assert f"{NS}/gone-bot" in response.json()["error"]
        with pytest.raises(A2AClientError, match="502"):
            await A2ACardResolver(http, stack.proxy("gone-bot")).get_agent_card()


def test_upstream_403_passes_through_with_its_body(stack: Stack) -> None:
    response = httpx.post(stack.proxy("fraud-bot"), json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage"})
    assert response.status_code == 403
    assert response.json() == {"error": {"code": -32001, "message": DENY_MESSAGE}}
    missing = httpx.get(stack.proxy() + "no-such-thing")
    assert missing.status_code == 404


def test_agent_output_comes_back_as_json_never_html(stack: Stack) -> None:
    attack = "<img src=x onerror=alert(1)>"
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "SendMessage",
        "params": {"message": {"messageId": "x1", "role": "ROLE_USER", "parts": [{"text": attack}]}},
    }
    response = httpx.post(stack.proxy(), json=body, headers={"A2A-Version": "1.0"})
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    [reply] = [a for a in response.json()["result"]["task"]["artifacts"] if a["name"] == "reply"]
    assert reply["parts"][0]["text"] == f"turn 1: you said {attack}"


def test_oversized_request_is_refused(stack: Stack) -> None:
    response = httpx.post(stack.proxy(), content=b"x" * (4 * 1024 * 1024 + 1))
    assert response.status_code == 413


def test_page_is_served_with_a_csp_that_allows_only_its_own_script(stack: Stack) -> None:
    page = httpx.get(stack.chatbot + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "TrustUsBank" in page.text
    [script] = re.findall(r"<script>(.*?)</script>", page.text, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = page.headers["content-security-policy"]
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    config = httpx.get(stack.chatbot + "/api/config").json()
    assert config == {"agent": f"{NS}/support-bot", "endpoint": f"api/a2a/{NS}/support-bot/"}
    assert httpx.get(stack.chatbot + "/healthz").json()["status"] == "ok"


def test_page_never_parses_data_as_html() -> None:
    [script] = re.findall(r"<script>(.*?)</script>", PAGE, flags=re.DOTALL)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in PAGE, sink
    assert "textContent" in script
    # offline: nothing loaded from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", PAGE)
    assert "@import" not in PAGE
    # the page speaks A2A 1.0 JSON-RPC and keeps one conversation
    assert '"SendMessage"' in script
    assert '"A2A-Version": "1.0"' in script
    assert "contextId" in script
    assert "sessionStorage" in script


def test_rewrite_keeps_the_path_under_the_agent_and_handles_v0_3_cards() -> None:
    kagent = "http://kagent-controller.kagent:8083/api/a2a/trustusbank-bank-agents/support-bot/"
    public = "http://127.0.0.1:18009/api/a2a/trustusbank-bank-agents/support-bot/"
    legacy = {
        "name": "support-bot",
        "url": kagent,
        "preferredTransport": "JSONRPC",
        "additionalInterfaces": [
            {"url": kagent + "v1", "transport": "HTTP+JSON"},
            {"url": "support-bot:9090", "transport": "GRPC"},
        ],
    }
    rewritten = rewrite_card(legacy, kagent, public)
    assert rewritten["url"] == public
    assert rewritten["additionalInterfaces"] == [{"url": public + "v1", "transport": "HTTP+JSON"}]
    assert legacy["url"] == kagent, "the input is not modified"
    elsewhere = rewrite_card({"supportedInterfaces": [{"url": "http://other:1/x"}]}, kagent, public)
    assert elsewhere["supportedInterfaces"] == [{"url": public}]


def test_env_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHATBOT_AGENT.name, "not a ref")
    with pytest.raises(WorkloadConfigError, match="namespace"):
        create_app_from_env()
    monkeypatch.setenv(CHATBOT_AGENT.name, "trustusbank-bank-agents/triage-bot")
    monkeypatch.setenv(CHATBOT_UPSTREAM.name, "http://kagent-controller.kagent:8083/api/a2a/{agent}/")
    with pytest.raises(WorkloadConfigError, match="namespace"):
        create_app_from_env()
    monkeypatch.setenv(
        CHATBOT_UPSTREAM.name, "http://kagent-controller.kagent:8083/api/a2a/{namespace}/{agent}/"
    )
    with TestClient(create_app_from_env()) as client:
        assert client.get("/healthz").json()["agent"] == "trustusbank-bank-agents/triage-bot"


def test_served_as_a_workload_behind_a_path_prefix(serve) -> None:
    """`trustusbank serve chatbot` with agents behind one gateway, as kagent's controller serves them."""
    agents = start(Starlette(routes=[Mount(f"/api/a2a/{NS}/support-bot", echo_agent(AgentLog()))]))
    try:
        chatbot = serve(
            "chatbot",
            env={
                CHATBOT_AGENT.name: f"{NS}/support-bot",
                CHATBOT_UPSTREAM.name: agents.url + "/api/a2a/{namespace}/{agent}/",
            },
        )
        proxy = f"{chatbot.url}/api/a2a/{NS}/support-bot/"
        card = httpx.get(proxy + ".well-known/agent-card.json").json()
        assert [i["url"] for i in card["supportedInterfaces"]] == [proxy]
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {"message": {"messageId": "s1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
        }
        task = httpx.post(proxy, json=body, headers={"A2A-Version": "1.0"}).json()["result"]["task"]
        assert task["artifacts"][0]["parts"][0]["text"] == "turn 1: you said hi"
        # Only the page's agent: TRUSTUSBANK_CHATBOT_AGENTS is unset.
        assert httpx.get(f"{chatbot.url}/api/a2a/{NS}/triage-bot/").status_code == 403
    finally:
        agents.stop()
