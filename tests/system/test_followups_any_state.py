"""The follow-on demos pass on the first run whatever the last command left, back to back in any order.

Two states a presenter really leaves: after `trustusbank demo` (the defence set on, the
rug-pulled converter running, alerts fired) and after `trustusbank reset` (neither). In each
the six demos run back to back, each as `trustusbank demo <name>` runs it (`runner`), in a
different order; each must pass, say what it set up, and leave the defence set and the
converter's build as it found them. The egress-llm run is also checked in detail here (it is
the slowest demo: it rolls the agents onto the gateway and back).
"""

from __future__ import annotations

import json
from typing import Any

from tests.system.conftest import Cluster
from trustusbank.runtime import control
from trustusbank.runtime.apply import applied
from trustusbank.runtime.defence import defence_state
from trustusbank.scenario.cluster import Cluster as Story
from trustusbank.scenario.followups import FOLLOW_UPS, FollowUp, runner

AGENTS = "trustusbank-bank-agents"
AFTER_DEMO = ["live-policy", "a2a", "trace", "rate-limit", "egress-llm", "l7-block"]
AFTER_RESET = list(reversed(AFTER_DEMO))


def _defence(cluster: Cluster) -> str:
    return defence_state(cluster.files, control.deploy_of(cluster.files))


def _converter_digest(cluster: Cluster) -> str | None:
    entry = next(p for p in cluster.status()["pods"] if p["name"] == "currency-converter-0")
    return entry.get("image_id")


def _events_since(cluster: Cluster, offset: int) -> list[dict[str, Any]]:
    with cluster.files.events.open("rb") as log:
        log.seek(offset)
        return [json.loads(line) for line in log.read().splitlines() if line.strip()]


async def _run_all(cluster: Cluster, order: list[str]) -> dict[str, tuple[FollowUp, list[dict[str, Any]]]]:
    """Each demo's result and the runtime events it caused."""
    results = {}
    for name in order:
        defence, digest, files = _defence(cluster), _converter_digest(cluster), applied(cluster.files)
        offset = cluster.files.events.stat().st_size
        result = await runner(name)(Story(cluster.files), lambda _: None)
        assert result.ok, f"demo {name} failed after {order[: order.index(name)]}: {result.problems}"
        assert _defence(cluster) == defence, f"demo {name} left the defence set changed"
        assert _converter_digest(cluster) == digest, f"demo {name} left another converter build running"
        assert applied(cluster.files) == files, f"demo {name} left manifests applied"
        results[name] = result, _events_since(cluster, offset)
    return results


def _check_egress_llm(result: FollowUp, events: list[dict[str, Any]]) -> None:
    """support-bot rolled onto the changed ModelConfig (as kagent does), the prompt through the chatbot,
    the gateway's counts equal to the agent's own spans, and rolled back."""
    assert "support-bot" in result.data["rolled"]
    agent, calls = result.data["agent"], result.data["model_calls"]
    assert len(calls) == agent["model_calls"] >= 2
    assert result.data["tokens"]["gateway"] == [agent["input_tokens"], agent["output_tokens"]]
    assert {c["gen_ai.request.model"] for c in calls} == {agent["model"]}
    assert "£4,287.55" in result.data["reply"]
    support = f"{AGENTS}/support-bot"
    rolled = [e for e in events if e["event"] == "rollout-restarted" and e["deployment"] == support]
    assert len(rolled) == 2  # onto the gateway, and back
    assert {e["command"] for e in rolled} == {"trustusbank demo egress-llm"}


async def test_every_follow_on_demo_passes_after_demo_and_after_reset(cluster: Cluster) -> None:
    assert sorted(AFTER_DEMO) == sorted(FOLLOW_UPS)
    story = cluster.cli("demo", "--json", timeout=300)
    try:
        assert story.returncode == 0, story.stdout
        assert _defence(cluster) == "on"
        after_demo = await _run_all(cluster, AFTER_DEMO)
    except BaseException:  # the session's later tests need the baseline, not the demo's defence set
        cluster.cli("reset", timeout=180)
        raise
    # live-policy needs the converter reachable before its policy; it said so and put the set back.
    live, _ = after_demo["live-policy"]
    assert live.data["set_up"] == {"defence": {"was": "on", "needed": "off", "changed": True}}
    assert any("set up" in line and "defence set off" in line for line in live.lines)
    assert any("put back" in line for line in live.lines)

    reset = cluster.cli("reset", timeout=180)
    assert reset.returncode == 0, reset.stderr
    assert _defence(cluster) == "off"

    after_reset = await _run_all(cluster, AFTER_RESET)
    live, _ = after_reset["live-policy"]
    assert live.data["set_up"] == {"defence": {"was": "off", "needed": "off", "changed": False}}
    assert not any("set up" in line for line in live.lines)
    _check_egress_llm(*after_reset["egress-llm"])
    _check_egress_llm(*after_demo["egress-llm"])
