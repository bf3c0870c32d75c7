"""The seed runbook's follow-on demos, each done the way that works on a real cluster.

Each module exposes `async def run(cluster: Cluster, progress: Progress) -> FollowUp`,
leaves the cluster as it found it, and says plainly what it showed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from trustusbank.scenario.cluster import Cluster, Progress


@dataclass
class FollowUp:
    name: str
    ok: bool  # the demo showed what it claims
    summary: str  # one sentence
    lines: list[str] = field(default_factory=list)  # what to print, in order (Rich markup allowed)
    data: dict[str, Any] = field(default_factory=dict)  # the same, for --json
    problems: list[str] = field(default_factory=list)  # why ok is False


Runner = Callable[[Cluster, Progress], Coroutine[Any, Any, FollowUp]]

# name -> module under trustusbank.scenario.followups (imported when run)
FOLLOW_UPS: dict[str, str] = {
    "trace": "trace",
    "live-policy": "live_policy",
    "l7-block": "l7_block",
    "egress-llm": "egress_llm",
    "a2a": "a2a",
    "rate-limit": "rate_limit",
}


def runner(name: str) -> Runner:
    module = importlib.import_module(f"{__name__}.{FOLLOW_UPS[name]}")
    run: Runner = module.run
    return run
