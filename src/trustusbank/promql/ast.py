"""The expression tree of the PromQL subset our alert rules use.

Kept to what the rules need (selectors with matchers, ranges and offsets, a few
functions, aggregation by labels, comparisons against a number, and/or/unless with
`on`/`ignoring`), so that every node here has one evaluation we can test against `promtool`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Union

NAME_LABEL = "__name__"


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # =, !=, =~, !~
    value: str

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = anchored(self.value).fullmatch(value) is not None
        return found if self.op == "=~" else not found


@functools.lru_cache(maxsize=256)
def anchored(regex: str) -> re.Pattern[str]:
    """A PromQL regex: matched against the whole value (`fullmatch`), `.` matching newlines too."""
    return re.compile(f"(?:{regex})", re.DOTALL)


@dataclass(frozen=True)
class VectorSelector:
    matchers: tuple[Matcher, ...]
    offset: float = 0.0

    @property
    def metric(self) -> str | None:
        return next((m.value for m in self.matchers if m.name == NAME_LABEL and m.op == "="), None)


@dataclass(frozen=True)
class MatrixSelector:
    vector: VectorSelector
    range: float


@dataclass(frozen=True)
class NumberLiteral:
    value: float


@dataclass(frozen=True)
class StringLiteral:
    value: str


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: Expr
    grouping: tuple[str, ...] = ()
    without: bool = False


@dataclass(frozen=True)
class Matching:
    """`on(labels)` (only these labels match two elements) or `ignoring(labels)` (all but these)."""

    on: bool
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    matching: Matching | None = None  # None: all labels but the metric name


Expr = Union[VectorSelector, MatrixSelector, NumberLiteral, StringLiteral, Call, Aggregate, Binary]  # noqa: UP007

COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")
ARITHMETIC = ("+", "-", "*", "/", "%", "^")  # between numbers only (Grafana's health check asks `1+1`)
SET_OPERATORS = ("and", "or", "unless")
AGGREGATIONS = ("sum", "min", "max", "count", "avg")
FUNCTIONS = ("increase", "rate", "last_over_time", "label_replace")


def metric_names(expr: Expr) -> set[str]:
    """Every metric name the expression selects (what a scraper must keep)."""
    if isinstance(expr, VectorSelector):
        return {expr.metric} if expr.metric else set()
    if isinstance(expr, MatrixSelector):
        return metric_names(expr.vector)
    if isinstance(expr, Call):
        return set().union(*(metric_names(a) for a in expr.args))
    if isinstance(expr, Aggregate):
        return metric_names(expr.expr)
    if isinstance(expr, Binary):
        return metric_names(expr.lhs) | metric_names(expr.rhs)
    return set()


def lookbehind(expr: Expr) -> float:
    """How far back (seconds, before the lookback delta) evaluating `expr` reads."""
    if isinstance(expr, VectorSelector):
        return expr.offset
    if isinstance(expr, MatrixSelector):
        return expr.vector.offset + expr.range
    if isinstance(expr, Call):
        return max((lookbehind(a) for a in expr.args), default=0.0)
    if isinstance(expr, Aggregate):
        return lookbehind(expr.expr)
    if isinstance(expr, Binary):
        return max(lookbehind(expr.lhs), lookbehind(expr.rhs))
    return 0.0
