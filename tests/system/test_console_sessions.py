"""18007 on the embedded cluster: the seed prompt's session, tool calls and trace, as the console shows them.

The prompt goes through the chatbot (`trustusbank ask`, as the customer's page); the console's
app reads what the cluster's components wrote under `cluster.files`, and the agents' cards
from their pods, as the operator's console does.
"""

from __future__ import annotations

import json
import re

import httpx

from tests.serving import served
from tests.system.conftest import Cluster
from trustusbank.console.sessions import create_app

AGENTS = "trustusbank-bank-agents"
SEED_PROMPT = (
    "I am customer 12345. Please check my balance, list my recent transactions, "
    "and convert my balance to USD."
)


def ask_through_the_chatbot(cluster: Cluster, prompt: str) -> dict[str, object]:
    pod = cluster.topology.pod("trustusbank-bank-frontend/chatbot-0")
    assert pod is not None
    result = cluster.cli("ask", prompt, "--chatbot", f"http://{pod.app_ip}:8080", "--json")
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def components(page: str) -> set[str]:
    found = re.search(r"components: ([^<]*?) · ", page)
    assert found is not None, page[:2000]
    return set(found.group(1).split(", "))


def test_console_shows_support_bots_session_its_tool_calls_and_trace(cluster: Cluster) -> None:
    answer = ask_through_the_chatbot(cluster, SEED_PROMPT)
    context = str(answer["context_id"])

    with (
        served(lambda _: create_app(cluster.files)) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        # An agent exports its spans in batches: the session is on the page once its run's span is.
        session = cluster.wait_for(
            lambda: (r := http.get(f"/sessions/{context}")).status_code == 200 and r.text,
            what="support-bot's run of the prompt in its spans",
        )
        assert re.findall(r"tool (\w+) <span", session) == ["get_balance", "list_recent", "convert_currency"]
        assert SEED_PROMPT in session
        (trace_id,) = set(re.findall(r'href="/traces/([0-9a-f]{32})"', session))

        agent = http.get(f"/agents/{AGENTS}/support-bot")
        assert agent.status_code == 200
        assert f'href="/sessions/{context}"' in agent.text

        index = http.get("/")
        support = index.text[index.text.index(f">{AGENTS}/support-bot</a></h2>") :]
        assert "Agent card not readable" not in support.split("</section>")[0]
        assert "Uses the MCP server account-mcp" in support

        # The waypoint writes its spans in batches of its own: wait for them to join the agent's.
        trace = cluster.wait_for(
            lambda: len(components(text := http.get(f"/traces/{trace_id}").text)) >= 3 and text,
            what="spans from three components in the prompt's trace",
        )
    assert {"support-bot", "model", "waypoint"} <= components(trace)
