"""Every loaded rule with its state now: one reading of the evaluator for the page and the API.

The alerts page (`/alerts`), `/api/v1/rules` and `/api/v1/alerts` are all drawn from this
one view, so they cannot disagree about which rule fires with which alerts. States are
Prometheus': a rule is firing if any of its alerts fires, pending if one is pending, else
inactive; its health is "ok" once evaluated, "err" while its last evaluation failed, and
"unknown" before the first.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustusbank.alerts.evaluator import Alert, RuleEvaluator
from trustusbank.manifests.prometheus import Rule, RuleGroup

STATES = ("firing", "pending", "inactive")


@dataclass(frozen=True)
class RuleState:
    rule: Rule
    alerts: tuple[Alert, ...]  # pending and firing, ordered by labels
    health: str  # ok, err, unknown
    last_error: str
    last_evaluation: float | None
    evaluation_seconds: float

    @property
    def kind(self) -> str:
        return "alerting" if self.rule.alert else "recording"

    @property
    def state(self) -> str:
        states = {a.state for a in self.alerts}
        return next((s for s in STATES if s in states), "inactive")

    def count(self, state: str) -> int:
        return sum(1 for a in self.alerts if a.state == state)


@dataclass(frozen=True)
class GroupState:
    group: RuleGroup
    rules: tuple[RuleState, ...]
    interval: float  # how often it really runs: the evaluator's period, whatever the group asks

    @property
    def last_evaluation(self) -> float | None:
        return max((r.last_evaluation for r in self.rules if r.last_evaluation is not None), default=None)

    @property
    def evaluation_seconds(self) -> float:
        return sum(r.evaluation_seconds for r in self.rules)


def rule_states(evaluator: RuleEvaluator, interval: float) -> list[GroupState]:
    """The evaluator's groups, each rule with its active alerts, health and last evaluation."""
    active: dict[str, list[Alert]] = {}
    for (rule_key, _), alert in evaluator.active.items():
        active.setdefault(rule_key, []).append(alert)
    groups = []
    for group in evaluator.groups:
        rules = []
        for rule in group.rules:
            key = f"{group.source}/{group.name}/{rule.name}"
            error = evaluator.errors.get(key, "")
            evaluated = evaluator.last_evaluation.get(key)
            health = "err" if error else "ok" if evaluated else "unknown"
            alerts = tuple(sorted(active.get(key, []), key=lambda a: a.labels))
            at, seconds = evaluated if evaluated else (None, 0.0)
            rules.append(RuleState(rule, alerts, health, error, at, seconds))
        groups.append(GroupState(group, tuple(rules), interval))
    return groups
