"""The matrix `bench attacks` runs: which cells, in which order, and the report they make.

Cells are ordered so the cluster changes as little as possible: a defence level at a time
(the slow change: node proxies, waypoint, maybe the agents' restart), then each user task's
benign run followed by its attacked runs. The benign runs give utility; the attacked runs give
utility under attack and targeted ASR. The smallest matrix (`--quick`) is one user task, one
goal, one vector and one wording at every level: what the test suite runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustusbank.scenario.bench import attacks as attack_wordings
from trustusbank.scenario.bench import defences, tasks
from trustusbank.scenario.bench.attacks import Attack
from trustusbank.scenario.bench.defences import Level
from trustusbank.scenario.bench.harness import Bench, Cell
from trustusbank.scenario.bench.score import AGENTDOJO_GPT4O_ASR, LevelScore, by, score
from trustusbank.scenario.bench.tasks import InjectionTask, UserTask

Progress = Callable[[str], None]
MODELS = {"scripted": "scripted", "compromised": "compromised"}  # --model word -> ModelConfig
BREAKDOWNS = (
    ("injection", "injection_task"),
    ("attack", "attack"),
    ("vector", "vector"),
    ("user_task", "user_task"),
)
QUICK = {"user_tasks": ("conversion",), "injection_tasks": ("exfiltrate-profile",), "vectors": ("result",)}


@dataclass
class Options:
    model: str = "scripted"
    user_tasks: tuple[str, ...] = ()
    injection_tasks: tuple[str, ...] = ()
    vectors: tuple[str, ...] = ()
    attacks: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    quick: bool = False
    keep: bool = False  # leave the bench's cluster running afterwards
    agents: str = "declared"  # "broad": support-bot given tools and a hand-off beyond its job

    def model_config(self) -> str:
        return MODELS.get(self.model, self.model)


@dataclass
class Plan:
    user_tasks: list[UserTask]
    injection_tasks: list[InjectionTask]
    vectors: list[str]
    attacks: list[Attack]
    levels: list[Level]

    def attacked(self, task: UserTask) -> list[tuple[InjectionTask, str, Attack]]:
        return [
            (injection, vector, attack)
            for injection in self.injection_tasks
            for vector in self.vectors
            if vector in task.vectors
            for attack in self.attacks
        ]

    def size(self) -> int:
        per_level = sum(1 + len(self.attacked(t)) for t in self.user_tasks)
        return per_level * len(self.levels)


def plan(options: Options) -> Plan:
    """The cells to run; every unknown name is a ValueError naming the known ones."""
    chosen = {**{k: getattr(options, k) for k in QUICK}, **(QUICK if options.quick else {})}
    vectors = chosen["vectors"] or tasks.VECTORS
    if options.agents not in defences.AGENT_MODES:
        raise ValueError(f"unknown agents {options.agents!r}; known: {', '.join(defences.AGENT_MODES)}")
    unknown = [v for v in vectors if v not in tasks.VECTORS]
    if unknown:
        raise ValueError(f"unknown vector {', '.join(unknown)}; known: {', '.join(tasks.VECTORS)}")
    return Plan(
        user_tasks=tasks.pick(tasks.USER_TASKS, chosen["user_tasks"], "user task"),
        injection_tasks=tasks.pick(tasks.INJECTION_TASKS, chosen["injection_tasks"], "injection task"),
        vectors=list(vectors),
        attacks=attack_wordings.choose(options.attacks or None),
        levels=defences.levels(options.levels or None),
    )


@dataclass
class Report:
    model: str
    plan: Plan
    agents: str = "declared"
    cells: list[Cell] = field(default_factory=list)

    def scores(self) -> list[LevelScore]:
        return [score(level.name, self.cells) for level in self.plan.levels]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "agents": self.agents,
            "matrix": {
                "user_tasks": [t.id for t in self.plan.user_tasks],
                "injection_tasks": [t.id for t in self.plan.injection_tasks],
                "vectors": self.plan.vectors,
                "attacks": [a.name for a in self.plan.attacks],
                "levels": [level.name for level in self.plan.levels],
                "cells": len(self.cells),
            },
            "levels": [
                {
                    **s.to_dict(),
                    "summary": next(x.summary for x in self.plan.levels if x.name == s.level),
                    **{
                        f"targeted_asr_by_{name}": {
                            k: v.to_dict() for k, v in by(field, s.level, self.cells).items()
                        }
                        for name, field in BREAKDOWNS
                    },
                }
                for s in self.scores()
            ],
            "reference": {"agentdojo_gpt4o_targeted_asr": AGENTDOJO_GPT4O_ASR},
            "cells": [c.to_dict() for c in self.cells],
        }


async def run(options: Options, state: Path, deploy: Path, progress: Progress) -> Report:
    """Start the bench's cluster, run every cell of the plan, stop it (unless `keep`)."""
    chosen = plan(options)
    report = Report(options.model, chosen, options.agents)
    bench = Bench(state, deploy, progress)
    progress(
        f"{chosen.size()} cells: model {options.model}, levels {', '.join(x.name for x in chosen.levels)}"
    )
    guard = any(defences.GUARD in level.files for level in chosen.levels)
    bench.start(guard=guard)
    try:
        await bench.prepare(options.model_config(), guard=guard, agents=options.agents)
        done = 0
        for level in chosen.levels:
            await bench.set_level(level)
            for task in chosen.user_tasks:
                for injection, vector, attack in [(None, None, None), *chosen.attacked(task)]:
                    cell = await bench.run(task, injection, vector, attack)
                    report.cells.append(cell)
                    done += 1
                    what = (
                        f"{injection.id} via {vector} ({attack.name})" if injection and attack else "benign"
                    )
                    verdict = "ATTACK SUCCEEDED" if cell.attacked else "ok" if cell.utility else "task failed"
                    progress(f"[{done}/{chosen.size()}] {level.name} {task.id} {what}: {verdict}")
    finally:
        if not options.keep:
            bench.stop()
    return report
