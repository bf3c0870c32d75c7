"""Which series a query reads, and whether anything exposes them.

A query naming a series no component exposes is not an error to Prometheus: it selects
nothing, so an alert never fires and a dashboard panel stays empty, silently. These helpers
turn that silence into a message naming the query and the missing metric. They take plain
(name, expression) pairs, so alert rules and dashboard panels are checked alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from trustusbank.promql.ast import (
    NAME_LABEL,
    Aggregate,
    Binary,
    Call,
    Expr,
    MatrixSelector,
    VectorSelector,
)
from trustusbank.promql.parser import PromQLError, parse


@dataclass(frozen=True)
class UnknownSeries:
    """One query reading a series that no scraped component exposes (or not parsing at all)."""

    query: str  # the query's name: an alert, a record, a dashboard panel
    selector: str  # the selector as written back, e.g. `foo_total{job="x"}`; "" when it does not parse
    message: str

    def __str__(self) -> str:
        where = f" {self.selector}" if self.selector else ""
        return f"{self.query}:{where}: {self.message}"


def selectors(expr: Expr) -> list[VectorSelector]:
    """Every series selector in `expr`, in the order written (a range selector's vector included)."""
    if isinstance(expr, VectorSelector):
        return [expr]
    if isinstance(expr, MatrixSelector):
        return [expr.vector]
    if isinstance(expr, Call):
        return [s for arg in expr.args for s in selectors(arg)]
    if isinstance(expr, Aggregate):
        return selectors(expr.expr)
    if isinstance(expr, Binary):
        return selectors(expr.lhs) + selectors(expr.rhs)
    return []


def unknown_series(queries: Iterable[tuple[str, str]], exposed: Collection[str]) -> list[UnknownSeries]:
    """Each selector of each (name, PromQL) query whose metric name is not in `exposed`
    (metric names as scraped, with `_total`, `_bucket`... suffixes). A query that does not
    parse, and a selector that names no metric, are reported too: they cannot be shown right."""
    found: list[UnknownSeries] = []
    for name, text in queries:
        try:
            expr = parse(text)
        except PromQLError as exc:
            found.append(UnknownSeries(name, "", f"does not parse: {exc}"))
            continue
        for selector in selectors(expr):
            problem = _problem(selector, exposed)
            if problem:
                found.append(UnknownSeries(name, _text(selector), problem))
    return found


def _problem(selector: VectorSelector, exposed: Collection[str]) -> str | None:
    by_name = [m for m in selector.matchers if m.name == NAME_LABEL]
    if not by_name:
        return "selects no metric by name, so nothing says which component must expose it"
    if any(all(m.matches(metric) for m in by_name) for metric in exposed):
        return None
    metric = selector.metric
    if metric is None:
        return "no exposed metric name matches"
    close = difflib.get_close_matches(metric, list(exposed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"metric {metric!r} is exposed by no scraped component{hint}"


def _text(selector: VectorSelector) -> str:
    metric = selector.metric
    shown = [m for m in selector.matchers if not (m.name == NAME_LABEL and m.op == "=" and m.value == metric)]
    labels = ", ".join(f"{m.name}{m.op}{_quoted(m.value)}" for m in shown)
    return f"{metric or ''}{{{labels}}}" if labels or not metric else metric


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
