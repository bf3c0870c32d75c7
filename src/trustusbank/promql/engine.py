"""Evaluate the PromQL subset at one instant, with Prometheus' semantics.

What matters for equivalence with a real Prometheus (and is tested against
`promtool test rules` on the same series):
- instant selectors take the newest sample in the 5-minute lookback window,
  unless it is a staleness marker; `offset` shifts the evaluation time;
- range selectors are left-open, `(t - range, t]` (Prometheus 3);
- `increase`/`rate` correct counter resets and extrapolate to the window's edges
  exactly as Prometheus' `extrapolatedRate` does (never below zero for counters);
- `and`/`or`/`unless` match elements on all labels but the metric name, or on the labels
  `on(...)` names, or on all but those `ignoring(...)` names;
- `last_over_time` keeps the metric name (as promtool does), other functions drop it;
- comparisons against a number filter, keeping the vector's value and labels;
- aggregations drop the metric name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from trustusbank.errors import ConfigError
from trustusbank.promql.ast import (
    ARITHMETIC,
    NAME_LABEL,
    Aggregate,
    Binary,
    Call,
    Expr,
    Matching,
    MatrixSelector,
    NumberLiteral,
    StringLiteral,
    VectorSelector,
    anchored,
)
from trustusbank.promql.series import Labels, SeriesStore, label, without_name

LOOKBACK_DELTA = 300.0


class EvaluationError(ConfigError, RuntimeError):
    """An expression that cannot be evaluated on this data (e.g. duplicate output series)."""


@dataclass(frozen=True)
class Sample:
    labels: Labels
    value: float

    def get(self, name: str) -> str:
        return label(self.labels, name)


Vector = list[Sample]
RangeSeries = tuple[Labels, list[tuple[float, float]]]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


class Engine:
    def __init__(self, store: SeriesStore, lookback: float = LOOKBACK_DELTA) -> None:
        self.store = store
        self.lookback = lookback

    def vector(self, expr: Expr, t: float) -> Vector:
        result = self.eval(expr, t)
        if not isinstance(result, list):
            raise EvaluationError("the expression does not return an instant vector")
        return result

    def matrix(self, selector: MatrixSelector, t: float) -> list[RangeSeries]:
        """The raw samples a range selector reads at `t`: what an instant query of `x[5m]` returns."""
        return self._range(selector, t)[0]

    def eval(self, expr: Expr, t: float) -> Vector | float | str:
        if isinstance(expr, NumberLiteral):
            return expr.value
        if isinstance(expr, StringLiteral):
            return expr.value
        if isinstance(expr, VectorSelector):
            return self._select(expr, t)
        if isinstance(expr, Call):
            return self._call(expr, t)
        if isinstance(expr, Aggregate):
            return _aggregate(expr, self.vector(expr.expr, t))
        if isinstance(expr, Binary):
            return self._binary(expr, t)
        raise EvaluationError(f"a {type(expr).__name__} is not an instant expression")

    # -- selectors -------------------------------------------------------------
    def _select(self, selector: VectorSelector, t: float) -> Vector:
        at = t - selector.offset
        found = []
        for series in self.store.series(selector.metric):
            if all(m.matches(label(series.labels, m.name)) for m in selector.matchers):
                value = series.at(at, self.lookback)
                if value is not None:
                    found.append(Sample(series.labels, value))
        return found

    def _range(self, matrix: MatrixSelector, t: float) -> tuple[list[RangeSeries], float, float]:
        end = t - matrix.vector.offset
        start = end - matrix.range
        selected = []
        for series in self.store.series(matrix.vector.metric):
            if all(m.matches(label(series.labels, m.name)) for m in matrix.vector.matchers):
                points = series.window(start, end)
                if points:
                    selected.append((series.labels, points))
        return selected, start, end

    # -- functions -------------------------------------------------------------
    def _call(self, call: Call, t: float) -> Vector:
        if call.func in ("increase", "rate"):
            matrix = call.args[0]
            assert isinstance(matrix, MatrixSelector)
            selected, start, end = self._range(matrix, t)
            out = []
            for labels, points in selected:
                value = extrapolated_rate(points, start, end, is_counter=True, is_rate=call.func == "rate")
                if value is not None:
                    out.append(Sample(without_name(labels), value))
            return _unique(out, call.func)
        if call.func == "last_over_time":
            matrix = call.args[0]
            assert isinstance(matrix, MatrixSelector)
            selected, _, _ = self._range(matrix, t)
            return [Sample(labels, points[-1][1]) for labels, points in selected]
        if call.func == "label_replace":
            vector = self.vector(call.args[0], t)
            dst, replacement, src, regex = (a.value for a in call.args[1:] if isinstance(a, StringLiteral))
            return _unique([label_replace(s, dst, replacement, src, regex) for s in vector], call.func)
        raise EvaluationError(f"function {call.func!r} is not supported")

    # -- operators -------------------------------------------------------------
    def _binary(self, expr: Binary, t: float) -> Vector | float:
        lhs, rhs = self.eval(expr.lhs, t), self.eval(expr.rhs, t)
        if expr.op in ARITHMETIC:
            if not (isinstance(lhs, float) and isinstance(rhs, float)):
                raise EvaluationError(f"arithmetic operator {expr.op!r} needs numbers on both sides")
            return arithmetic(expr.op, lhs, rhs)
        if expr.op in ("and", "or", "unless"):
            if not (isinstance(lhs, list) and isinstance(rhs, list)):
                raise EvaluationError(f"{expr.op!r} needs instant vectors on both sides")
            return _set_operation(expr.op, lhs, rhs, expr.matching)
        compare = _COMPARE[expr.op]
        if isinstance(lhs, list) and isinstance(rhs, float):
            return [s for s in lhs if compare(s.value, rhs)]
        if isinstance(lhs, float) and isinstance(rhs, list):
            return [s for s in rhs if compare(lhs, s.value)]
        raise EvaluationError(f"{expr.op!r} needs an instant vector and a number")


def extrapolated_rate(
    points: list[tuple[float, float]], start: float, end: float, *, is_counter: bool, is_rate: bool
) -> float | None:
    """Prometheus' `extrapolatedRate`: the increase seen in the window, extrapolated to its edges
    (at most half a sample interval past the first/last sample, and never below a counter's zero)."""
    if len(points) < 2:
        return None
    (first_t, first_v), (last_t, last_v) = points[0], points[-1]
    result = last_v - first_v
    if is_counter:
        previous = first_v
        for _, value in points[1:]:
            if value < previous:
                result += previous  # a reset: the counter restarted from zero
            previous = value
    to_start, to_end = first_t - start, end - last_t
    sampled = last_t - first_t
    average = sampled / (len(points) - 1)
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    if is_counter and result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    if to_end >= threshold:
        to_end = average / 2
    factor = (sampled + to_start + to_end) / sampled
    if is_rate:
        factor /= end - start
    return result * factor


def arithmetic(op: str, a: float, b: float) -> float:
    """`a <op> b` as Go's float64 computes it for Prometheus, never raising: division by zero is
    ±Inf (NaN for 0/0), `%` is `math.Mod` (the sign of `a`; NaN for a zero divisor or an infinite
    dividend), `^` is `math.Pow` (±Inf on overflow, NaN for a negative base to a fraction)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
        return a / b
    if op == "%":
        if b == 0 or math.isinf(a) or math.isnan(a) or math.isnan(b):
            return math.nan
        return math.fmod(a, b)
    if op == "^":
        return _power(a, b)
    raise EvaluationError(f"unknown arithmetic operator {op!r}")


def _power(a: float, b: float) -> float:
    odd = b.is_integer() and math.fmod(b, 2) != 0
    try:
        return math.pow(a, b)
    except OverflowError:
        return -math.inf if a < 0 and odd else math.inf
    except ValueError:  # zero to a negative power, or a negative base to a fraction
        if a == 0:
            return math.copysign(math.inf, a) if odd else math.inf
        return math.nan


def label_replace(sample: Sample, dst: str, replacement: str, src: str, regex: str) -> Sample:
    match = anchored(regex).fullmatch(sample.get(src))
    if match is None:
        return sample
    value = expand(replacement, match)
    kept = [(k, v) for k, v in sample.labels if k != dst]
    if value:
        kept.append((dst, value))
    return Sample(tuple(sorted(kept)), sample.value)


_GROUP_REF = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+)|(\$))")


def expand(template: str, match: re.Match[str]) -> str:
    """Go's `Regexp.Expand`: `$1`, `${1}`, `$name`, `$$`; an unknown group expands to nothing."""

    def one(ref: re.Match[str]) -> str:
        if ref.group(3):
            return "$"
        name = ref.group(1) or ref.group(2)
        try:
            group = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:
            return ""
        return group or ""

    return _GROUP_REF.sub(one, template)


def _unique(vector: Vector, what: str) -> Vector:
    seen: set[Labels] = set()
    for sample in vector:
        if sample.labels in seen:
            raise EvaluationError(f"{what}: the result holds two series with labels {dict(sample.labels)}")
        seen.add(sample.labels)
    return vector


def signature(labels: Labels, matching: Matching | None) -> Labels:
    """What two elements must share to match: all labels but the name, or as `on`/`ignoring` say."""
    if matching is None:
        return without_name(labels)
    if matching.on:
        return tuple((k, v) for k, v in labels if k in matching.labels)
    return tuple((k, v) for k, v in labels if k not in matching.labels and k != NAME_LABEL)


def _set_operation(op: str, lhs: Vector, rhs: Vector, matching: Matching | None = None) -> Vector:
    right = {signature(s.labels, matching) for s in rhs}
    if op == "and":
        return [s for s in lhs if signature(s.labels, matching) in right]
    if op == "unless":
        return [s for s in lhs if signature(s.labels, matching) not in right]
    left = {signature(s.labels, matching) for s in lhs}
    return lhs + [s for s in rhs if signature(s.labels, matching) not in left]


def _aggregate(expr: Aggregate, vector: Vector) -> Vector:
    groups: dict[Labels, list[float]] = {}
    for sample in vector:
        if expr.without:
            key = tuple((k, v) for k, v in sample.labels if k not in expr.grouping and k != NAME_LABEL)
        else:
            key = tuple((k, v) for k, v in sample.labels if k in expr.grouping)
        groups.setdefault(key, []).append(sample.value)
    combine: dict[str, Callable[[list[float]], float]] = {
        "sum": sum,
        "min": min,
        "max": max,
        "count": lambda values: float(len(values)),
        "avg": lambda values: sum(values) / len(values),
    }
    return [Sample(key, float(combine[expr.op](values))) for key, values in groups.items()]
