"""Each panel of `telemetry.dashboard` answered for one time range: the data the page and charts draw.

The queries are the panels' own, sent as written to the Prometheus API (the alert
evaluator's, here), with the dashboard's variables put in as Grafana puts them. Time series
come back on one grid of `step`-spaced points (a missing sample stays a gap, not a zero);
stat and table panels are instant queries at the range's very end. Two panels read what the
embedded cluster has no engine for, and say so on the panel:
- a LogQL panel (ztunnel's access log in Loki) shows the same lines from the evidence store;
- the image panel (kube-state-metrics' `kube_pod_container_info`, which nothing here exports)
  shows, when Prometheus finds nothing, the converter's pod starts on the evidence record,
  each with the digest its tag resolved to.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from trustusbank.console.evidence_view import EvidenceReader, Rows
from trustusbank.console.prometheus import Answer, Prometheus, PrometheusError, Series
from trustusbank.console.timerange import TimeRange
from trustusbank.promql.ast import metric_names
from trustusbank.promql.parser import parse
from trustusbank.telemetry.dashboard import (
    CONVERTER_DEPLOYMENT,
    CONVERTER_NAMESPACE,
    PANELS,
    VARIABLES,
    Panel,
    Query,
    Variable,
)

IMAGES_METRIC = "kube_pod_container_info"  # telemetry.dashboard.EXTERNAL: kube-state-metrics'
L4_DENY = "l4-deny"  # what ztunnel's "connection closed due to policy rejection" line becomes
ALL = "$__all"  # Grafana's value for "All"

LOGS_STAND_IN = (
    "On a cluster this panel is ztunnel's access log in Loki (LogQL below). The embedded cluster "
    "has no Loki: these are the same lines, on the evidence record (kind l4-deny: a connection "
    "a destination's node proxy refused by policy), newest first."
)
IMAGES_STAND_IN = (
    f"On a cluster, {IMAGES_METRIC} comes from kube-state-metrics, which the embedded cluster does "
    f"not run. Instead: {CONVERTER_NAMESPACE}/{CONVERTER_DEPLOYMENT}'s pod starts and its tag's "
    "pushes on the evidence record, newest first, each with the digest that ran (image_id)."
)

_LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Line:
    """One series of a chart, on the chart's grid, with its last value and its peak in the range."""

    name: str
    values: list[float | None]
    last: float | None
    peak: float | None


@dataclass
class PanelData:
    panel: Panel
    times: list[float] = field(default_factory=list)  # a time series panel's grid
    lines: list[Line] = field(default_factory=list)
    stats: list[tuple[str, float]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    evidence: Rows | None = None
    stand_in: str = ""
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """What the chart script draws: uPlot's columns (times, then one list per series)."""
        return {
            "id": self.panel.id,
            "title": self.panel.title,
            "kind": self.panel.kind,
            "times": self.times,
            "series": [
                {"name": line.name, "values": [_finite(v) for v in line.values]} for line in self.lines
            ],
            "stats": [{"name": name, "value": _finite(value)} for name, value in self.stats],
            "columns": self.columns,
            "rows": self.rows,
            "evidence": [
                {"seq": row.record.seq, "time": row.record.time, "trace_ids": list(row.trace_ids)}
                for row in (self.evidence.rows if self.evidence else [])
            ],
            "warnings": self.warnings,
            "errors": self.errors,
        }


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity; a chart shows them as a gap."""
    return value if value is not None and math.isfinite(value) else None


def panel(panel_id: int) -> Panel | None:
    return next((p for p in PANELS if p.id == panel_id), None)


def legend(template: str, labels: dict[str, str]) -> str:
    """A series' name: the query's legend with `{{label}}` filled in, or its label set (Grafana's auto)."""
    if template:
        return _LEGEND.sub(lambda m: labels.get(m[1], ""), template)
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def _promql_regex_literal(value: str) -> str:
    """`value` matched literally by `=~"..."`: regex-escaped, then escaped for the string."""
    return re.escape(value).replace("\\", "\\\\").replace('"', '\\"')


def interpolate(expr: str, choices: dict[str, str]) -> str:
    """`$name` and `${name}` replaced as Grafana does inside `=~`: All is `.*`, a value is literal."""

    def value(found: re.Match[str]) -> str:
        name = found[1] or found[2]
        variable = next((v for v in VARIABLES if v.name == name), None)
        if variable is None:
            return found[0]
        chosen = choices.get(name, ALL)
        return variable.all_value if chosen == ALL else _promql_regex_literal(chosen)

    return _VARIABLE.sub(value, expr)


def reads_images(query: Query) -> bool:
    if query.language != "promql":
        return False
    try:
        return IMAGES_METRIC in metric_names(parse(query.expr))
    except ValueError:  # a query that does not parse reads nothing; the API will say why
        return False


async def _each(
    queries: tuple[Query, ...], ask: Callable[[Query], Awaitable[Answer]], data: PanelData
) -> list[tuple[Query, list[Series]]]:
    answered = []
    for query in queries:
        try:
            answer = await ask(query)
        except PrometheusError as exc:
            data.errors.append(str(exc))
            continue
        data.warnings += [w for w in answer.warnings if w not in data.warnings]
        answered.append((query, answer.series))
    return answered


def _grid(window: TimeRange) -> list[float]:
    count = round((window.end - window.start) / window.step)
    return [window.start + n * window.step for n in range(count + 1)]


def _line(name: str, series: Series, grid: list[float], step: float) -> Line:
    at = {round((t - grid[0]) / step): v for t, v in series.points}
    values = [at.get(n) for n in range(len(grid))]
    present = [v for v in values if v is not None and math.isfinite(v)]
    last = next((v for v in reversed(values) if v is not None), None)
    return Line(name, values, last, max(present) if present else None)


async def _timeseries(data: PanelData, api: Prometheus, window: TimeRange, choices: dict[str, str]) -> None:
    async def ask(query: Query) -> Answer:
        return await api.range(interpolate(query.expr, choices), window.start, window.end, window.step)

    data.times = _grid(window)
    for query, found in await _each(data.panel.queries, ask, data):
        for series in found:
            data.lines.append(_line(legend(query.legend, series.labels), series, data.times, window.step))
    data.lines.sort(key=lambda line: line.name)


async def _instant(
    data: PanelData, api: Prometheus, window: TimeRange, choices: dict[str, str]
) -> list[tuple[Query, list[Series]]]:
    async def ask(query: Query) -> Answer:
        return await api.instant(interpolate(query.expr, choices), window.until)

    return await _each(data.panel.queries, ask, data)


async def _stat(data: PanelData, api: Prometheus, window: TimeRange, choices: dict[str, str]) -> None:
    for query, found in await _instant(data, api, window, choices):
        data.stats += [(legend(query.legend, s.labels), s.points[-1][1]) for s in found if s.points]
    if not data.stats and not data.errors:
        data.stats = [("", 0.0)]  # no series: none counted (Grafana's noValue "0")


async def _table(data: PanelData, api: Prometheus, window: TimeRange, choices: dict[str, str]) -> None:
    found = [s for _, series in await _instant(data, api, window, choices) for s in series]
    # The labels are the record (the Grafana table hides the instant's time and value too).
    data.columns = list(dict.fromkeys(k for s in found for k in s.labels if k != "__name__"))
    data.rows = sorted([s.labels.get(c, "") for c in data.columns] for s in found)


async def answer(
    panel: Panel,
    window: TimeRange,
    choices: dict[str, str],
    api: Prometheus | PrometheusError,
    evidence: EvidenceReader,
) -> PanelData:
    """The panel's data for `window`; `api` is the error instead when there is no Prometheus to ask."""
    data = PanelData(panel)
    if panel.kind == "logs":
        data.stand_in = LOGS_STAND_IN
        variable = variable_of(panel)
        chosen = choices.get(variable.name, ALL) if variable else ALL
        identity = None if chosen == ALL else chosen
        data.evidence = await asyncio.to_thread(
            evidence.denies, window.since, window.until, (L4_DENY,), identity
        )
        return data
    if isinstance(api, PrometheusError):
        data.errors.append(str(api))
    elif panel.kind == "timeseries":
        await _timeseries(data, api, window, choices)
    elif panel.kind == "stat":
        await _stat(data, api, window, choices)
    else:
        await _table(data, api, window, choices)
    if any(reads_images(q) for q in panel.queries) and not data.rows:
        data.stand_in = IMAGES_STAND_IN
        data.evidence = await asyncio.to_thread(
            evidence.workload_images, CONVERTER_NAMESPACE, CONVERTER_DEPLOYMENT, window.until
        )
    return data


def variable_of(panel: Panel) -> Variable | None:
    """The dashboard variable a panel's queries use, if any."""
    for variable in VARIABLES:
        if any(f"${variable.name}" in q.expr or f"${{{variable.name}}}" in q.expr for q in panel.queries):
            return variable
    return None


async def choices_of(
    variable: Variable, window: TimeRange, api: Prometheus | PrometheusError, evidence: EvidenceReader
) -> tuple[list[str], list[str]]:
    """A variable's values in the range (Grafana's `label_values`), from Prometheus and, for an
    offending identity, the evidence store's L4 denies too; and what went wrong asking."""
    found: set[str] = set()
    problems: list[str] = []
    if isinstance(api, PrometheusError):
        problems.append(str(api))
    else:
        seconds = max(1, math.ceil(window.until - window.since))
        expr = f"count by ({variable.label_name}) (last_over_time({variable.metric}[{seconds}s]))"
        try:
            answer = await api.instant(expr, window.until)
            label = variable.label_name
            found |= {s.labels[label] for s in answer.series if s.labels.get(label)}
        except PrometheusError as exc:
            problems.append(str(exc))
    if variable.label_name == "source_principal":
        found |= await asyncio.to_thread(evidence.deny_identities, window.since, window.until, (L4_DENY,))
    return sorted(found), problems
