"""Run `promtool test rules` files on the embedded evaluator.

The point is one set of test series for both engines: the files under
tests/alerts/promtool/ are run by the real `promtool` and by this, and both must
agree with the expectations written in them. Supported: `input_series` with the
expanding notation (`a+bxn`, `a-bxn`, `_`, `stale`, plain numbers),
`alert_rule_test` (firing alerts, labels and annotations compared exactly, as
promtool does) and `promql_expr_test` (samples, values to a relative 1e-6).
Anything else in a test file is refused, not skipped.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trustusbank.alerts.evaluator import RuleEvaluator
from trustusbank.errors import ConfigError
from trustusbank.manifests.prometheus import PrometheusRule, RuleGroup
from trustusbank.promql.ast import VectorSelector
from trustusbank.promql.durations import parse_duration
from trustusbank.promql.parser import parse
from trustusbank.promql.series import STALE, Labels, SeriesStore, labels_of

_EXPANDING = re.compile(r"(-?[0-9.eE+]+?)([+-])([0-9.eE]+)x(\d+)")
_TEST_KEYS = {"interval", "input_series", "alert_rule_test", "promql_expr_test", "name"}
RELATIVE_TOLERANCE = 1e-6
_FILE_KEYS = {"rule_files", "evaluation_interval", "tests", "group_eval_order"}


class RuleTestError(ConfigError, ValueError):
    """A test file this runner cannot run as promtool would."""


@dataclass(frozen=True)
class Failure:
    file: str
    test: int
    eval_time: float
    alertname: str
    expected: list[dict[str, Any]]
    got: list[dict[str, Any]]

    def __str__(self) -> str:
        return (
            f"{self.file} test {self.test}: {self.alertname} at {self.eval_time:g}s:\n"
            f"  expected {self.expected}\n  got      {self.got}"
        )


def expand_values(text: str) -> list[float | None]:
    """promtool's series notation, one entry per interval; None is a missing sample (`_`)."""
    values: list[float | None] = []
    for token in text.split():
        if token == "_":
            values.append(None)
        elif token == "stale":
            values.append(STALE)
        elif match := _EXPANDING.fullmatch(token):
            start, sign, step, count = match.groups()
            delta = float(step) if sign == "+" else -float(step)
            values += [float(start) + i * delta for i in range(int(count) + 1)]
        else:
            try:
                values.append(float(token))
            except ValueError:
                raise RuleTestError(f"unsupported series value {token!r}") from None
    return values


def series_labels(text: str) -> Labels:
    selector = parse(text)
    if not isinstance(selector, VectorSelector) or any(m.op != "=" for m in selector.matchers):
        raise RuleTestError(f"a series is a metric name with label=value pairs, got {text!r}")
    return labels_of({m.name: m.value for m in selector.matchers})


def load_groups(rule_file: Path) -> list[RuleGroup]:
    """A plain rule file (`groups:`), or a PrometheusRule manifest."""
    raw = yaml.safe_load(rule_file.read_text())
    if isinstance(raw, dict) and raw.get("kind") == "PrometheusRule":
        meta = raw.get("metadata") or {}
        return PrometheusRule.from_body(raw, meta.get("name", ""), meta.get("namespace")).groups
    body = {"spec": raw}
    return PrometheusRule.from_body(body, rule_file.stem, None).groups


def run_file(test_file: Path, rule_files: list[Path] | None = None) -> list[Failure]:
    """Run one test file; `rule_files` overrides the file's own `rule_files:` (relative to it)."""
    raw = yaml.safe_load(test_file.read_text())
    unknown = set(raw) - _FILE_KEYS
    if unknown:
        raise RuleTestError(f"{test_file}: unsupported keys {sorted(unknown)}")
    files = rule_files or [test_file.parent / name for name in raw.get("rule_files") or []]
    groups = [g for f in files for g in load_groups(f)]
    step = parse_duration(raw.get("evaluation_interval", "1m"))
    failures: list[Failure] = []
    for index, test in enumerate(raw.get("tests") or []):
        failures += _run_test(test_file.name, index, test, groups, step)
    return failures


def _run_test(
    name: str, index: int, test: dict[str, Any], groups: list[RuleGroup], step: float
) -> list[Failure]:
    unknown = set(test) - _TEST_KEYS
    if unknown:
        raise RuleTestError(f"{name} test {index}: unsupported keys {sorted(unknown)}")
    interval = parse_duration(test.get("interval", "1m"))
    store = SeriesStore()
    for entry in test.get("input_series") or []:
        labels = series_labels(entry["series"])
        for i, value in enumerate(expand_values(str(entry["values"]))):
            if value is not None:
                store.append(labels, i * interval, value)
    checks = sorted(test.get("alert_rule_test") or [], key=lambda c: parse_duration(c["eval_time"]))
    expressions = test.get("promql_expr_test") or []
    evaluator = RuleEvaluator(groups, store)
    failures: list[Failure] = []
    times = [parse_duration(c["eval_time"]) for c in [*checks, *expressions]]
    t, last = 0.0, max(times, default=0.0)
    pending = list(checks)
    # As promtool: rules run at every evaluation step up to the last eval_time, alert checks at
    # their step; expression checks run afterwards, so they see what recording rules wrote.
    while t <= last + 1e-9:
        due = [g for g in groups if g.interval is None or round(t / g.interval, 9).is_integer()]
        evaluator.evaluate(t, due)
        while pending and parse_duration(pending[0]["eval_time"]) <= t + 1e-9:
            check = pending.pop(0)
            failure = _compare(name, index, t, check, evaluator)
            if failure is not None:
                failures.append(failure)
        t += step
    failures += [f for check in expressions if (f := _expression(name, index, check, evaluator))]
    return failures


def _compare(
    name: str, index: int, t: float, check: dict[str, Any], evaluator: RuleEvaluator
) -> Failure | None:
    alertname = check["alertname"]
    got = [
        {"labels": dict(a.labels), "annotations": a.annotations}
        for a in evaluator.firing()
        if a.name == alertname
    ]
    expected = [
        {
            "labels": {**{k: str(v) for k, v in (e.get("exp_labels") or {}).items()}, "alertname": alertname},
            "annotations": {k: str(v) for k, v in (e.get("exp_annotations") or {}).items()},
        }
        for e in check.get("exp_alerts") or []
    ]
    if Counter(map(_key, got)) == Counter(map(_key, expected)):
        return None
    return Failure(name, index, t, alertname, expected, got)


def _key(alert: dict[str, Any]) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    return tuple(sorted(alert["labels"].items())), tuple(sorted(alert["annotations"].items()))


def _expression(name: str, index: int, check: dict[str, Any], evaluator: RuleEvaluator) -> Failure | None:
    t = parse_duration(check["eval_time"])
    got = [(dict(s.labels), s.value) for s in evaluator.engine.vector(parse(check["expr"]), t)]
    expected = [
        (dict(series_labels(e["labels"])) if e.get("labels") else {}, float(e["value"]))
        for e in check.get("exp_samples") or []
    ]
    same = len(got) == len(expected) and all(
        g_labels == e_labels and math.isclose(g_value, e_value, rel_tol=RELATIVE_TOLERANCE)
        for (g_labels, g_value), (e_labels, e_value) in zip(
            sorted(got, key=_by_labels), sorted(expected, key=_by_labels), strict=True
        )
    )
    if same:
        return None
    as_dicts = [{"labels": labels, "value": value} for labels, value in got]
    want = [{"labels": labels, "value": value} for labels, value in expected]
    return Failure(name, index, t, check["expr"], want, as_dicts)


def _by_labels(item: tuple[dict[str, str], float]) -> list[tuple[str, str]]:
    return sorted(item[0].items())
