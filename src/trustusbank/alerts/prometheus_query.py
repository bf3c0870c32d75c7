"""Instant and range queries over the evaluator's own series, answered in Prometheus' result shapes.

The engine is the evaluator's (`promql/`), over the samples it scraped for its rules and the
series its rules wrote (`ALERTS`, recording rules), so a query sees what the rules saw. What
it cannot answer it says: a metric the evaluator does not keep is a warning (Prometheus would
return the same empty answer, silently), a query outside the subset is `bad_data`, one that
fails on the data (two series with one label set) is `execution`, and one that outlasts its
deadline is `timeout`, as in Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from trustusbank.alerts.prometheus_format import sample_value, unix
from trustusbank.errors import ConfigError, OperationError
from trustusbank.promql.ast import Expr, MatrixSelector
from trustusbank.promql.engine import Engine, EvaluationError, RangeSeries, Vector
from trustusbank.promql.parser import PromQLError, parse, value_type
from trustusbank.promql.selectors import selectors
from trustusbank.promql.series import Labels

MAX_POINTS = 11_000  # Prometheus' limit on a range query's points per series
NO_STEP = "zero or negative query resolution step widths are not accepted. Try a positive integer"


class BadData(ConfigError, ValueError):
    """A query or parameter the API refuses: Prometheus' `bad_data`, HTTP 400."""


class ExecutionError(ConfigError, RuntimeError):
    """A query that parsed but cannot be evaluated on this data: Prometheus' `execution`, HTTP 422."""


class QueryTimeout(OperationError, TimeoutError):
    """A range query still evaluating at its deadline: Prometheus' `timeout`, HTTP 503."""


@dataclass
class QueryResult:
    result_type: str  # vector, matrix, scalar, string
    result: Any
    warnings: list[str] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        return {"resultType": self.result_type, "result": self.result}


def parse_query(text: str, kept: Collection[str]) -> tuple[Expr, list[str]]:
    """The expression, and a warning for each metric it names that this evaluator does not keep."""
    try:
        expr = parse(text)
    except (PromQLError, ValueError) as exc:
        raise BadData(f'invalid parameter "query": {exc}') from None
    missing = sorted({s.metric for s in selectors(expr) if s.metric is not None and s.metric not in kept})
    warnings = [
        f"{metric!r} is not kept here: the alert evaluator stores only the series its rules read "
        f"and write ({', '.join(sorted(kept))}), so it selects nothing"
        for metric in missing
    ]
    return expr, warnings


def _metric(labels: Labels) -> dict[str, str]:
    return dict(labels)


def instant(engine: Engine, text: str, t: float, kept: Collection[str]) -> QueryResult:
    """`/api/v1/query`: the expression at `t` (a range selector returns its raw samples, a matrix)."""
    expr, warnings = parse_query(text, kept)
    at = unix(t)
    if isinstance(expr, MatrixSelector):
        return QueryResult("matrix", _matrix(engine.matrix(expr, t)), warnings)
    value = _eval(engine, expr, t)
    if isinstance(value, list):
        result = [{"metric": _metric(s.labels), "value": [at, sample_value(s.value)]} for s in value]
        return QueryResult("vector", result, warnings)
    if isinstance(value, float):
        return QueryResult("scalar", [at, sample_value(value)], warnings)
    return QueryResult("string", [at, value], warnings)


def range_query(
    engine: Engine,
    text: str,
    start: float,
    end: float,
    step: float,
    kept: Collection[str],
    deadline: float | None = None,
) -> QueryResult:
    """`/api/v1/query_range`: the expression at `start`, `start + step`, ... up to `end`, per series;
    given a `deadline` (`time.monotonic()`), checked before each step."""
    expr, warnings = parse_query(text, kept)
    kind = value_type(expr)
    if kind not in ("vector", "scalar"):
        shown = "range vector" if kind == "matrix" else kind
        raise BadData(f'invalid expression type "{shown}" for range query, must be Scalar or instant Vector')
    if end < start:
        raise BadData("end timestamp must not be before start time")
    if step <= 0:
        raise BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    first, last, width = round(start * 1000), round(end * 1000), round(step * 1000)
    if width <= 0:
        raise BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    if (last - first) // width > MAX_POINTS:
        raise BadData(
            f"exceeded maximum resolution of {MAX_POINTS:,} points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    series: dict[Labels, list[list[Any]]] = {}
    for millis in range(first, last + 1, width):
        if deadline is not None and time.monotonic() >= deadline:
            raise QueryTimeout("query timed out in expression evaluation")
        t = millis / 1000
        value = _eval(engine, expr, t)
        if isinstance(value, float):  # a scalar is one series without labels
            series.setdefault((), []).append([unix(t), sample_value(value)])
        elif isinstance(value, list):
            for sample in value:
                series.setdefault(sample.labels, []).append([unix(t), sample_value(sample.value)])
    result = [{"metric": _metric(labels), "values": values} for labels, values in sorted(series.items())]
    return QueryResult("matrix", result, warnings)


def _eval(engine: Engine, expr: Expr, t: float) -> Vector | float | str:
    try:
        return engine.eval(expr, t)
    except EvaluationError as exc:
        raise ExecutionError(str(exc)) from None


def _matrix(selected: list[RangeSeries]) -> list[dict[str, Any]]:
    return [
        {"metric": _metric(labels), "values": [[unix(t), sample_value(v)] for t, v in points]}
        for labels, points in sorted(selected)
    ]
