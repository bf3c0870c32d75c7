"""The follow-on demos about agents, on the shared embedded cluster: `trace`, `a2a`, `egress-llm`.

Each demo judges itself from the evidence (spans, access logs, decision logs, metrics);
these tests check that judgement against the same evidence and that the cluster is left
as the demo found it.
"""

from __future__ import annotations

import json

import httpx

from tests.system.conftest import Cluster as RuntimeCluster
from trustusbank.runtime.apply import applied
from trustusbank.scenario.cluster import Cluster
from trustusbank.scenario.followups import runner

AGENTS = "trustusbank-bank-agents"


def quiet(_: str) -> None:
    return None


def attacker_view(cluster: Cluster) -> int:
    return int(httpx.get(f"{cluster.attacker}/api/count", trust_env=False, timeout=10).json()["count"])


def converter_image_id(cluster: RuntimeCluster) -> str | None:
    pods = cluster.status()["pods"]
    entry = next(p for p in pods if p["name"] == "currency-converter-0")
    return entry.get("image_id")


async def test_trace_joins_the_chain_and_links_the_converters_call_to_the_attacker(
    cluster: RuntimeCluster,
) -> None:
    demo = Cluster(cluster.files)
    view, image = attacker_view(demo), converter_image_id(cluster)
    result = await runner("trace")(demo, quiet)
    assert result.ok, result.problems
    assert result.data["rug_pulled"]
    assert {"get_profile", "convert_currency"} <= set(result.data["tool_calls"])
    [attempt] = result.data["exfil_attempts"]
    assert attempt["source"].endswith("/ns/trustusbank-bank-vendors/sa/currency-converter")
    assert attempt["destination"].endswith("/ns/external-attacker/sa/mock-attacker")
    assert {r["direction"] for r in attempt["access_log"]} == {"outbound", "inbound"}
    tree = "\n".join(result.data["tree"])
    assert "invoke_agent support-bot" in tree
    assert "agentgateway POST /mcp/currency" in tree
    # put back: the converter's build and the attacker's view
    assert converter_image_id(cluster) == image
    if view == 0:
        assert attacker_view(demo) == 0


async def test_a2a_shows_an_allowed_and_an_access_policy_denied_call(cluster: RuntimeCluster) -> None:
    result = await runner("a2a")(Cluster(cluster.files), quiet)
    assert result.ok, result.problems
    allowed, denied = result.data["allowed"], result.data["denied"]
    assert {r["dst.workload"] for r in allowed["ztunnel"].values()} == {"fraud-bot-0"}
    assert denied["answer"]["status"] == 403
    # the deny is at the A2A layer: both ends of the connection logged it as complete
    assert all("error" not in r for r in denied["ztunnel"].values())
    assert {r["src.workload"] for r in denied["ztunnel"].values()} == {"triage-bot-0"}
    assert denied["agent_log"][0]["source.principal"].endswith("/sa/triage-bot")


async def test_egress_llm_rolls_the_agent_onto_the_gateway_and_counts_its_tokens(
    cluster: RuntimeCluster,
) -> None:
    """The running support-bot is moved by the ModelConfig change (rolled, as kagent does), the customer's
    prompt goes through the chatbot, and the gateway's counts match the agent's own spans."""
    before = {p.name for p in applied(cluster.files)}
    events_at = cluster.files.events.stat().st_size
    result = await runner("egress-llm")(Cluster(cluster.files), quiet)
    assert result.ok, result.problems
    assert "support-bot" in result.data["rolled"]
    agent = result.data["agent"]
    calls = result.data["model_calls"]
    assert len(calls) == agent["model_calls"] >= 2
    assert result.data["tokens"]["gateway"] == [agent["input_tokens"], agent["output_tokens"]]
    assert {c["gen_ai.request.model"] for c in calls} == {agent["model"]}
    assert "£4,287.55" in result.data["reply"]
    assert {p.name for p in applied(cluster.files)} == before
    # rolled onto the gateway and back again, each rollout in the runtime log with who asked for it
    with cluster.files.events.open("rb") as log:
        log.seek(events_at)
        events = [json.loads(line) for line in log.read().splitlines() if line.strip()]
    rolled = [
        e for e in events if e["event"] == "rollout-restarted" and e["deployment"] == f"{AGENTS}/support-bot"
    ]
    assert len(rolled) == 2
    assert {e["command"] for e in rolled} == {"trustusbank demo egress-llm"}
