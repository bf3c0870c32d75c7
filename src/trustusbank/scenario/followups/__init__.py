"""The seed runbook's follow-on demos, each done the way that works on a real cluster.

Each module exposes `async def run(cluster: Cluster, progress: Progress) -> FollowUp` and,
when it needs the cluster in a given state, `NEEDS` (see `preconditions`): `runner` sets
that state up first and puts it back afterwards, so each demo passes on the first run
whatever the last command left. Each says plainly what it showed, and what it left
changed (the a2a demo's flagged transaction, as on a cluster).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from trustusbank.scenario.cluster import Cluster, Progress
from trustusbank.scenario.followup_names import FOLLOW_UPS
from trustusbank.scenario.followups.preconditions import ANY, Needs, prepared


@dataclass
class FollowUp:
    name: str
    ok: bool  # the demo showed what it claims
    summary: str  # one sentence
    lines: list[str] = field(default_factory=list)  # what to print, in order (Rich markup allowed)
    data: dict[str, Any] = field(default_factory=dict)  # the same, for --json
    problems: list[str] = field(default_factory=list)  # why ok is False


Runner = Callable[[Cluster, Progress], Coroutine[Any, Any, FollowUp]]

__all__ = ["FOLLOW_UPS", "FollowUp", "Runner", "runner"]


def runner(name: str) -> Runner:
    """The demo `name`, run on the cluster state it declares it needs (its module's `NEEDS`)."""
    module = importlib.import_module(f"{__name__}.{FOLLOW_UPS[name]}")
    run: Runner = module.run
    needs: Needs = getattr(module, "NEEDS", ANY)

    async def on_its_state(cluster: Cluster, progress: Progress) -> FollowUp:
        async with prepared(cluster, needs, progress) as done:
            result = await run(cluster, progress)
        result.lines[:0] = done.before
        result.lines += done.after
        if done.data:
            result.data["set_up"] = done.data
        return result

    return on_its_state
