"""`/d/dora-evidence` as HTML: every panel, readable with script off, charts drawn where script runs.

Each time series panel carries an empty chart (`figure.chart`, filled by dashboard.js from
`/api/panels/<id>` for the page's own absolute range) above a server-rendered table of each
series' value at the range's end and its peak in the range, which is what a reader without
script, a screen reader or a printout gets. Stat and table panels are plain HTML. Panels with
a stand-in (no Loki, no kube-state-metrics here) say what they show instead. Time range,
refresh and the identity variable are links and a form: no script needed to change them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from trustusbank.console.evidence_view import Rows
from trustusbank.console.html import document, evidence_table, number
from trustusbank.console.panels import ALL, PanelData
from trustusbank.console.timerange import PRESETS, REFRESHES, TimeRange, refresh_seconds
from trustusbank.promql.durations import format_duration
from trustusbank.telemetry.dashboard import TITLE, Variable

PATH = "/d/dora-evidence"
SUBTITLE = (
    "What an auditor asks of the incident: which control refused what, whom, and when; what the "
    "SOC was told; which image digest ran. PromQL panels are answered by the alert evaluator's "
    "Prometheus API, log panels by the hash-chained evidence store. Times are UTC."
)
SPANS = {"stat": 1, "timeseries": 2, "table": 2, "logs": 4}  # columns of the page's 4-column grid
EVIDENCE_SPAN = 4  # a panel showing evidence rows takes the page's width


@dataclass(frozen=True)
class Choice:
    variable: Variable
    values: list[str]
    chosen: str  # ALL or one of values


@dataclass(frozen=True)
class View:
    window: TimeRange
    panels: list[PanelData]
    choices: list[Choice]
    denies: Rows
    problems: list[str]  # said once, above the panels
    prometheus_url: str | None
    sessions_url: str | None


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def query_string(window: TimeRange, choices: list[Choice], **changes: str) -> str:
    """This view's parameters (its relative range as written), with `changes`."""
    params = {"from": window.raw_from, "to": window.raw_to, "refresh": window.refresh}
    params |= {f"var-{c.variable.name}": c.chosen for c in choices if c.chosen != ALL}
    params |= changes
    return urlencode(params)


def _controls(view: View) -> str:
    w = view.window
    presets = "".join(
        f'<a class="preset{" on" if (w.raw_from, w.raw_to) == (f"now-{p}", "now") else ""}" '
        f'href="?{escape(query_string(w, view.choices, **{"from": f"now-{p}", "to": "now"}))}">Last {p}</a>'
        for p in PRESETS
    )
    refreshes = "".join(
        f'<a class="refresh{" on" if w.refresh == r else ""}" '
        f'href="?{escape(query_string(w, view.choices, refresh=r))}">{r}</a>'
        for r in REFRESHES
    )
    shown = (
        f'<p class="range">Showing <time>{_when(w.since)}</time> to <time>{_when(w.until)}</time> UTC, '
        f"a point every {format_duration(w.step)}.</p>"
    )
    return (
        f'<nav class="controls" aria-label="Time range and refresh"><span class="group">{presets}</span>'
        f'<span class="group">Refresh: {refreshes}</span></nav>{shown}{_variables(view)}'
    )


def _variables(view: View) -> str:
    if not view.choices:
        return ""
    w = view.window
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{escape(v)}">'
        for k, v in (("from", w.raw_from), ("to", w.raw_to), ("refresh", w.refresh))
    )
    selects = ""
    for c in view.choices:
        options = f'<option value="{ALL}"{" selected" if c.chosen == ALL else ""}>All</option>'
        options += "".join(
            f'<option value="{escape(v)}"{" selected" if v == c.chosen else ""}>{escape(v)}</option>'
            for v in c.values
        )
        name = escape(f"var-{c.variable.name}")
        selects += f'<label>{escape(c.variable.label)} <select name="{name}">{options}</select></label>'
    return (
        f'<form class="variables" method="get" action="{PATH}">{hidden}{selects}<button>Apply</button></form>'
    )


def _problems(view: View) -> str:
    notes = [f'<p class="problem">{escape(p)}</p>' for p in view.problems]
    if view.window.beyond_kept:
        notes.append(
            '<p class="note">The range reaches back further than the alert evaluator keeps samples '
            "(30 minutes): the PromQL panels are empty before that.</p>"
        )
    return "".join(notes)


def _series_table(data: PanelData) -> str:
    if not data.lines:
        return '<p class="none">No data in this range.</p>'
    rows = "".join(
        f'<tr class="series"><td class="name">{escape(line.name)}</td>'
        f'<td class="last">{number(line.last)}</td><td class="peak">{number(line.peak)}</td></tr>'
        for line in data.lines
    )
    return (
        '<table class="values"><thead><tr><th class="name">Series</th><th class="last">At the end</th>'
        f'<th class="peak">Peak in range</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _body(data: PanelData, view: View) -> str:
    kind = data.panel.kind
    if kind == "timeseries":
        chosen = {f"var-{c.variable.name}": c.chosen for c in view.choices if c.chosen != ALL}
        params = {**view.window.absolute(), **chosen}
        src = f"/api/panels/{data.panel.id}?{urlencode(params)}"
        label = escape(f"Chart of {data.panel.title}")
        chart = (
            f'<figure class="chart" data-src="{escape(src)}" aria-label="{label}">'
            '<noscript><p class="none">Charts need script; the values are below.</p></noscript></figure>'
        )
        return chart + _series_table(data)
    if kind == "stat":
        return (
            '<div class="stats">'
            + "".join(
                f'<div class="stat"><span class="value">{number(value)}</span>'
                f'<span class="name">{escape(name)}</span></div>'
                for name, value in data.stats
            )
            + "</div>"
        )
    if kind == "table" and data.rows:
        head = "".join(f"<th>{escape(c)}</th>" for c in data.columns)
        rows = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in data.rows)
        return f'<table class="labels"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    if data.evidence is not None:
        empty = "No such record in this range." if kind == "logs" else "No such record yet."
        return evidence_table(data.evidence, view.sessions_url, empty)
    return '<p class="none">No data.</p>'


def _panel(data: PanelData, view: View) -> str:
    p = data.panel
    stand_in = f'<p class="stand-in">{escape(data.stand_in)}</p>' if data.stand_in else ""
    errors = "".join(f'<p class="problem">{escape(e)}</p>' for e in data.errors)
    warnings = "".join(f'<p class="warning">{escape(w)}</p>' for w in data.warnings)
    queries = "\n\n".join(f"{q.language}: {q.expr}" for q in p.queries)
    span = EVIDENCE_SPAN if data.evidence is not None else SPANS[p.kind]
    return (
        f'<section class="panel {p.kind} span-{span}" id="panel-{p.id}" data-panel="{p.id}" '
        f'data-kind="{p.kind}"><h2>{escape(p.title)}</h2><p class="description">{escape(p.description)}</p>'
        f"{stand_in}{errors}{_body(data, view)}{warnings}"
        f'<details class="query"><summary>Queries</summary><pre>{escape(queries)}</pre></details></section>'
    )


def _denies(view: View) -> str:
    return (
        '<section class="panel logs span-4" id="denies" data-panel="denies" data-kind="evidence">'
        "<h2>Every deny on the evidence record</h2>"
        '<p class="description">Each refusal in the range, at every layer (L4 AuthorizationPolicy at '
        "ztunnel, MCP tool policy at the waypoint, A2A AccessPolicy at the agent), with the offending "
        "SPIFFE identity, the image and digest its workload ran, its trace and its log line.</p>"
        f"{evidence_table(view.denies, view.sessions_url, 'No deny in this range.')}</section>"
    )


def _footer(view: View) -> str:
    where = (
        f"PromQL answered by {escape(view.prometheus_url)}."
        if view.prometheus_url
        else "No Prometheus API was found for the PromQL panels."
    )
    sessions = (
        f'Traces open on the sessions console at <a href="{escape(view.sessions_url)}">'
        f"{escape(view.sessions_url)}</a>."
        if view.sessions_url
        else "The sessions console (traces) is not running: trace ids are shown, not linked."
    )
    return (
        f"<footer><p>{where} {sessions} The panels are defined once (trustusbank.telemetry.dashboard); on a "
        "Kubernetes cluster (<code>trustusbank k8s up</code>) Grafana draws the same ones at "
        "/d/dora-evidence.</p></footer>"
    )


def render(view: View) -> str:
    header = (
        f'<header><h1>{escape(TITLE)}</h1><p class="sub">{SUBTITLE}</p>'
        f"{_controls(view)}{_problems(view)}</header>"
    )
    main = f'<main class="grid">{"".join(_panel(p, view) for p in view.panels)}{_denies(view)}</main>'
    refresh = refresh_seconds(view.window.refresh)
    title = f"{TITLE} · trustusbank console"
    return document(title, header + main + _footer(view), refresh=refresh, charts=True)
