"""The follow-on demos about agents, on the shared embedded cluster: `trace`, `a2a`, `egress-llm`.

Each demo judges itself from the evidence (spans, access logs, decision logs, metrics);
these tests check that judgement against the same evidence and that the cluster is left
as the demo found it.
"""

from __future__ import annotations

import httpx

from tests.system.conftest import Cluster as RuntimeCluster
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
