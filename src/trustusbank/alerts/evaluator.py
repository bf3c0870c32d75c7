"""Alerting and recording rules over the series store, with Prometheus' alert lifecycle.

Per alerting rule and evaluation: each output sample is an alert whose labels are
the sample's (metric name dropped) plus the rule's labels plus `alertname`; a new
one is pending, and firing once it has been active for the rule's `for` (at once
when there is none); one that stops appearing is resolved. Annotations are
rendered each time with `$labels` and `$value` of the sample, as Prometheus does.

Each evaluation also writes Prometheus' `ALERTS` series into the store (value 1, the alert's
labels plus `alertstate`, stale once the alert is gone or changes state), so a query for
`ALERTS{alertstate="firing"}` (the dashboard's first panel) answers here as on a cluster.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from trustusbank.manifests.prometheus import Rule, RuleGroup
from trustusbank.promql import templates
from trustusbank.promql.ast import NAME_LABEL, metric_names
from trustusbank.promql.engine import Engine, EvaluationError
from trustusbank.promql.series import Labels, SeriesStore, labels_of

log = logging.getLogger(__name__)

RESOLVED_RETENTION = 15 * 60.0  # Prometheus keeps resolved alerts this long, to notify and show them
# A resolved alert is shown for RESOLVED_RETENTION, but at most this many of them: more than this
# resolving within 15 minutes is a storm, and the oldest are forgotten first (counted).
MAX_RESOLVED = 500
ALERTS_METRIC = "ALERTS"
ALERT_STATE_LABEL = "alertstate"


def fingerprint(labels: Labels) -> str:
    text = "\x00".join(f"{k}\x01{v}" for k, v in labels)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Alert:
    labels: Labels
    annotations: dict[str, str]
    value: float
    active_at: float
    state: str = "pending"  # pending, firing, resolved
    fired_at: float | None = None
    resolved_at: float | None = None
    rule_group: str = ""
    inputs: tuple[str, ...] = ()  # the metrics the rule reads
    rule_labels: tuple[str, ...] = ()  # labels the rule adds (not found on the inputs)

    @property
    def name(self) -> str:
        return dict(self.labels).get("alertname", "")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alertname": self.name,
            "state": self.state,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "active_at": self.active_at,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "fingerprint": self.fingerprint,
            "group": self.rule_group,
        }


@dataclass
class Transition:
    """An alert that changed state in an evaluation: what the log and the notifier hear about."""

    alert: Alert
    state: str  # firing or resolved


@dataclass
class RuleEvaluator:
    groups: list[RuleGroup]
    store: SeriesStore
    engine: Engine = field(init=False)
    active: dict[tuple[str, str], Alert] = field(default_factory=dict)
    max_resolved: int = MAX_RESOLVED
    resolved: deque[Alert] = field(init=False)  # the latest `max_resolved`, for RESOLVED_RETENTION
    resolved_dropped: int = field(init=False, default=0)  # forgotten before their retention ended
    errors: dict[str, str] = field(default_factory=dict)
    last_evaluation: dict[str, tuple[float, float]] = field(default_factory=dict)  # rule: (at, seconds)
    _recorded: dict[str, set[Labels]] = field(default_factory=dict)  # rule: the series it wrote last

    def __post_init__(self) -> None:
        self.engine = Engine(self.store)
        self.resolved = deque(maxlen=self.max_resolved)

    def evaluate(self, t: float, groups: list[RuleGroup] | None = None) -> list[Transition]:
        """Evaluate every rule of `groups` (default: all) at time `t`; returns the state changes."""
        changes: list[Transition] = []
        evaluated: set[str] = set()
        for group in self.groups if groups is None else groups:
            for rule in group.rules:
                key = f"{group.source}/{group.name}/{rule.name}"
                evaluated.add(key)
                started = time.perf_counter()
                try:
                    if rule.alert:
                        changes += self._alert(rule, group, t)
                        self._write(key, self._alert_series(key), t)
                    else:
                        self._record(rule, key, t)
                    self.errors.pop(key, None)
                except EvaluationError as exc:
                    # A rule that cannot be evaluated keeps its alerts as they were (Prometheus does the
                    # same), and the failure is visible in /api/alerts and the log.
                    log.error("rule %s failed: %s", key, exc)
                    self.errors[key] = str(exc)
                self.last_evaluation[key] = (t, time.perf_counter() - started)
        if groups is None:  # a rule no longer loaded: what it wrote ends now
            for key in set(self._recorded) - evaluated:
                self._write(key, {}, t)
                del self._recorded[key]
        self._forget(t)
        return changes

    def _alert(self, rule: Rule, group: RuleGroup, t: float) -> list[Transition]:
        assert rule.alert is not None
        rule_key = f"{group.source}/{group.name}/{rule.alert}"
        seen: set[tuple[str, str]] = set()
        changes = []
        for sample in self.engine.vector(rule.expr, t):
            names = dict(sample.labels)
            final = {k: v for k, v in names.items() if k != NAME_LABEL}
            final.update(rule.labels)
            final["alertname"] = rule.alert
            labels = tuple(sorted((k, v) for k, v in final.items() if v))
            key = (rule_key, fingerprint(labels))
            if key in seen:
                raise EvaluationError(f"{rule.alert}: two alerts with labels {final} (check the by() clause)")
            seen.add(key)
            text = {
                name: templates.render(tpl, names, sample.value) for name, tpl in rule.annotations.items()
            }
            alert = self.active.get(key)
            if alert is None:
                alert = self.active[key] = Alert(
                    labels,
                    text,
                    sample.value,
                    t,
                    rule_group=group.name,
                    inputs=tuple(sorted(metric_names(rule.expr))),
                    rule_labels=("alertname", *rule.labels),
                )
            alert.value, alert.annotations = sample.value, text
            if alert.state == "pending" and t - alert.active_at >= rule.for_seconds:
                alert.state, alert.fired_at = "firing", t
                changes.append(Transition(alert, "firing"))
        for key in [k for k in self.active if k[0] == rule_key and k not in seen]:
            alert = self.active.pop(key)
            if alert.state == "firing":
                alert.state, alert.resolved_at = "resolved", t
                if len(self.resolved) == self.resolved.maxlen:
                    self.resolved_dropped += 1  # the deque forgets its oldest as this one goes in
                self.resolved.append(alert)
                changes.append(Transition(alert, "resolved"))
        return changes

    def _alert_series(self, rule_key: str) -> dict[Labels, float]:
        """`ALERTS{<alert labels>, alertstate="pending|firing"} 1` for each active alert of the rule."""
        return {
            labels_of({**dict(a.labels), NAME_LABEL: ALERTS_METRIC, ALERT_STATE_LABEL: a.state}): 1.0
            for (key, _), a in self.active.items()
            if key == rule_key
        }

    def _record(self, rule: Rule, key: str, t: float) -> None:
        assert rule.record is not None
        now: dict[Labels, float] = {}
        for sample in self.engine.vector(rule.expr, t):
            merged = {k: v for k, v in sample.labels if k != NAME_LABEL}
            merged.update(rule.labels)
            merged[NAME_LABEL] = rule.record
            now[tuple(sorted(merged.items()))] = sample.value
        self._write(key, now, t)

    def _write(self, key: str, now: dict[Labels, float], t: float) -> None:
        """Append what rule `key` outputs at `t`; what it wrote last time and not now goes stale."""
        for labels, value in now.items():
            self.store.append(labels, t, value)
        for gone in self._recorded.get(key, set()) - set(now):
            self.store.mark_stale(gone, t)
        self._recorded[key] = set(now)

    def _forget(self, t: float) -> None:
        while self.resolved and (self.resolved[0].resolved_at or 0) < t - RESOLVED_RETENTION:
            self.resolved.popleft()

    def last_event_at(self, alert: Alert) -> float | None:
        """When the evidence behind `alert` last grew: the latest increase of an input series whose
        labels agree with the alert's (on the labels both have). An alert keeps firing while its
        window holds events; this says whether a *new* one arrived, e.g. since an act began."""
        wanted = {k: v for k, v in alert.labels if k not in alert.rule_labels}
        latest: float | None = None
        for metric in alert.inputs:
            for series in self.store.series(metric):
                names = dict(series.labels)
                if any(names[k] != v for k, v in wanted.items() if k in names):
                    continue
                found = series.last_increase()
                if found is not None and (latest is None or found > latest):
                    latest = found
        return latest

    def firing(self) -> list[Alert]:
        return [a for a in self.active.values() if a.state == "firing"]

    def alerts(self) -> list[Alert]:
        """Pending and firing alerts, then the recently resolved ones."""
        return [*self.active.values(), *self.resolved]
