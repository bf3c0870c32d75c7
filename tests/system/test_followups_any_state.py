"""The follow-on demos pass on the first run whatever the last command left, back to back in any order.

Two states a presenter really leaves: after `trustusbank demo` (the defence set on, the
rug-pulled converter running, alerts fired) and after `trustusbank reset` (neither). In
each the six demos run as a user runs them (`trustusbank demo <name> --json`), in a
different order; each must pass, say what it set up, and leave the defence set and the
converter's build as it found them.
"""

from __future__ import annotations

import json
from typing import Any

from tests.system.conftest import Cluster
from trustusbank.scenario.followups import FOLLOW_UPS

AFTER_DEMO = ["live-policy", "a2a", "trace", "rate-limit", "egress-llm", "l7-block"]
AFTER_RESET = list(reversed(AFTER_DEMO))


def _defence(cluster: Cluster) -> str:
    return cluster.cli("policies", "status").stdout.splitlines()[0]


def _converter_digest(cluster: Cluster) -> str | None:
    entry = next(p for p in cluster.status()["pods"] if p["name"] == "currency-converter-0")
    return entry.get("image_id")


def _run_all(cluster: Cluster, order: list[str]) -> dict[str, dict[str, Any]]:
    results = {}
    for name in order:
        defence, digest = _defence(cluster), _converter_digest(cluster)
        done = cluster.cli("demo", name, "--json", timeout=180)
        assert done.returncode == 0, f"demo {name} failed after {order[: order.index(name)]}:\n{done.stdout}"
        results[name] = json.loads(done.stdout)
        assert results[name]["ok"], (name, results[name]["problems"])
        assert _defence(cluster) == defence, f"demo {name} left the defence set changed"
        assert _converter_digest(cluster) == digest, f"demo {name} left another converter build running"
    return results


def test_every_follow_on_demo_passes_after_demo_and_after_reset(cluster: Cluster) -> None:
    assert sorted(AFTER_DEMO) == sorted(FOLLOW_UPS)
    story = cluster.cli("demo", "--json", timeout=300)
    assert story.returncode == 0, story.stdout
    assert _defence(cluster) == "defence on"

    after_demo = _run_all(cluster, AFTER_DEMO)
    # live-policy needs the converter reachable before its policy; it said so and put the set back.
    live = after_demo["live-policy"]
    assert live["data"]["set_up"] == {"defence": {"was": "on", "needed": "off", "changed": True}}
    assert any("set up" in line and "defence set off" in line for line in live["lines"])
    assert any("put back" in line for line in live["lines"])

    reset = cluster.cli("reset", timeout=180)
    assert reset.returncode == 0, reset.stderr
    assert _defence(cluster) == "defence off"

    after_reset = _run_all(cluster, AFTER_RESET)
    live = after_reset["live-policy"]
    assert live["data"]["set_up"] == {"defence": {"was": "off", "needed": "off", "changed": False}}
    assert not any("set up" in line for line in live["lines"])
