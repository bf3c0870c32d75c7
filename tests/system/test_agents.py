"""The agents on the embedded cluster: chatbot → support-bot → waypoint → MCP servers, and AccessPolicy.

The agents run from deploy/07-agents as kagent's controller would run them (a pod per
Agent), on the scripted model. `trustusbank ask` goes through the chatbot, as the
customer's page does; calls leave the agents through their node proxies and reach the
MCP servers only through the waypoint.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver

from tests.system.conftest import Cluster
from trustusbank.telemetry.tracing import read_spans

AGENTS_NS = "trustusbank-bank-agents"
SUPPORT_BOT = f"spiffe://cluster.local/ns/{AGENTS_NS}/sa/support-bot"
CHATBOT = "cluster.local/ns/trustusbank-bank-frontend/sa/chatbot"
GATEWAY_HOST = "trustusbank-agentgw.trustusbank-platform.svc.cluster.local:8080"
SEED_PROMPT = (
    "I am customer 12345. Please check my balance, list my recent transactions, "
    "and convert my balance to USD."
)


def chatbot_url(cluster: Cluster) -> str:
    """The chatbot as the port-forward would reach it: straight into its pod."""
    pod = cluster.topology.pod("trustusbank-bank-frontend/chatbot-0")
    assert pod is not None
    return f"http://{pod.app_ip}:8080"


def ask(cluster: Cluster, prompt: str, *extra: str) -> tuple[int, Any, str]:
    result = cluster.cli("ask", prompt, "--chatbot", chatbot_url(cluster), "--json", *extra)
    try:
        return result.returncode, json.loads(result.stdout), result.stderr
    except ValueError:
        return result.returncode, None, result.stdout + result.stderr


def waypoint_requests(cluster: Cluster) -> list[dict[str, Any]]:
    log = cluster.files.waypoint_log("trustusbank-platform/trustusbank-agentgw")
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_seed_prompt_answered_through_the_chatbot_and_the_waypoint(cluster: Cluster) -> None:
    before = len(waypoint_requests(cluster))
    code, answer, err = ask(cluster, SEED_PROMPT)
    assert code == 0, err

    assert "£4,287.55" in answer["reply"]
    assert "$5,445.19" in answer["reply"]
    steps = answer["tool_calls"]
    assert [s["name"] for s in steps] == ["get_balance", "list_recent", "convert_currency"]
    assert all(s["url"].startswith(f"http://{GATEWAY_HOST}/mcp/") for s in steps)
    assert not any(s["is_error"] for s in steps)

    # The waypoint saw each call, from support-bot's SPIFFE identity, and allowed it.
    calls = [
        r
        for r in waypoint_requests(cluster)[before:]
        if r.get("mcp.method") == "tools/call" and r.get("src.identity") == SUPPORT_BOT
    ]
    assert [r["mcp.tool"] for r in calls] == ["get_balance", "list_recent", "convert_currency"]
    assert {r["decision"] for r in calls} == {"allow"}


def _balance_spans(cluster: Cluster) -> list[dict[str, Any]]:
    return [
        s
        for path in cluster.files.outputs("traces", f"agent-{AGENTS_NS}-support-bot.jsonl")
        for s in read_spans(path)
        if s["name"] == "execute_tool get_balance"
    ]


def test_agent_spans_join_the_waypoint_trace(cluster: Cluster) -> None:
    # Earlier tests (the demo's acts) leave spans of their own: wait for this ask's, not any.
    before = len(_balance_spans(cluster))
    code, _, err = ask(cluster, "I am customer 12346. What is my balance?")
    assert code == 0, err
    agent_spans = cluster.wait_for(
        lambda: (spans := _balance_spans(cluster))[before:] and spans,
        what="support-bot's execute_tool span for this ask",
    )
    span = agent_spans[-1]
    assert span["attributes"]["gen_ai.operation.name"] == "execute_tool"
    assert json.loads(span["attributes"]["gen_ai.tool.call.arguments"]) == {"customer_id": "12346"}
    trace_id = span["context"]["trace_id"].removeprefix("0x")
    cluster.wait_for(
        lambda: any(
            r.get("trace_id") == trace_id and r.get("mcp.tool") == "get_balance"
            for r in waypoint_requests(cluster)
        ),
        what="the waypoint's log line in the agent's trace",
    )


def test_fraud_report_delegates_support_to_fraud_to_triage(cluster: Cluster) -> None:
    code, answer, err = ask(cluster, "I am customer 12345 and I don't recognise a transaction on my account.")
    assert code == 0, err
    [handoff] = [s for s in answer["tool_calls"] if s["type"] == "agent"]
    assert handoff["server"] == f"{AGENTS_NS}/fraud-bot"
    fraud_steps = handoff["steps"]
    assert "flag_suspicious" in [s["name"] for s in fraud_steps]
    [triage] = [s for s in fraud_steps if s["type"] == "agent"]
    assert [s["name"] for s in triage["steps"]] == ["create_ticket", "notify_human"]


async def test_every_agent_card_is_served_through_the_chatbot(cluster: Cluster) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
        for agent in ("support-bot", "fraud-bot", "triage-bot"):
            base = f"{chatbot_url(cluster)}/api/a2a/{AGENTS_NS}/{agent}/"
            card = await A2ACardResolver(http, base).get_agent_card()
            assert card.name == agent
            assert all(i.url.startswith(base) for i in card.supported_interfaces)


def test_access_policy_denies_the_chatbot_calling_fraud_bot(cluster: Cluster) -> None:
    """Only support-bot may call fraud-bot: the chatbot's identity is refused, with a clear A2A error."""
    code, _, out = ask(cluster, "Score customer 12345", "--agent", f"{AGENTS_NS}/fraud-bot")
    assert code == 1
    assert "AccessPolicy" in out
    assert CHATBOT in out

    pod = cluster.topology.pod(f"{AGENTS_NS}/fraud-bot-0")
    assert pod is not None
    metrics = httpx.get(f"http://{pod.app_ip}:8080/metrics", trust_env=False).text
    denied = [
        line
        for line in metrics.splitlines()
        if line.startswith("kagent_accesspolicy_denied_total{") and CHATBOT in line
    ]
    assert denied, metrics
    assert float(denied[0].rsplit(" ", 1)[1]) >= 1


def test_access_policy_denies_an_agent_outside_the_delegation_graph(cluster: Cluster) -> None:
    """triage-bot is downstream of support-bot; calling support-bot from its pod is refused."""
    code = (
        "import httpx, json\n"
        f"r = httpx.post('http://support-bot.{AGENTS_NS}.svc.cluster.local:8080/', "
        "json={'jsonrpc': '2.0', 'id': 7, 'method': 'SendMessage', 'params': {'message': "
        "{'messageId': 'm1', 'role': 'ROLE_USER', 'parts': [{'text': 'hi'}]}}}, "
        "headers={'A2A-Version': '1.0'}, timeout=20)\n"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = cluster.exec_python(f"{AGENTS_NS}/triage-bot", code)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 403
    assert answer["body"]["id"] == 7
    assert "triage-bot" in answer["body"]["error"]["message"]
    (log,) = cluster.files.outputs("logs", f"agent-{AGENTS_NS}-support-bot.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(
        r["scope"] == "accesspolicy" and r["source.principal"].endswith("/sa/triage-bot") for r in records
    ), "the deny is logged"


@pytest.mark.parametrize("agent", ["no-such-bot", "Bad_Name"])
def test_unknown_or_malformed_agent_is_a_clear_error(cluster: Cluster, agent: str) -> None:
    code, _, out = ask(cluster, "hello", "--agent", f"{AGENTS_NS}/{agent}")
    assert code in (1, 2)
    assert out.strip()


def test_ask_without_a_url_talks_to_this_state_dirs_chatbot(cluster: Cluster) -> None:
    """The session cluster binds no seed port (TRUSTUSBANK_PORT_FORWARDS=0; another cluster may hold
    18009): `ask` must still reach this cluster's chatbot, never whatever answers on 18009."""
    result = cluster.cli("ask", "I am customer 12346. What is my balance?", "--json")
    assert result.returncode == 0, result.stderr
    assert "balance" in json.loads(result.stdout)["reply"].lower()
