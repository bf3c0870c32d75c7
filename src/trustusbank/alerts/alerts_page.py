"""`/alerts`: the alerting rules and their alerts where a Prometheus user looks for them.

Laid out as Prometheus' alerts page: per rule group, each alerting rule with its state
(inactive, pending, firing) and how many alerts it has, each active alert's labels,
annotations, state, active-since time and value, and the rule's definition (expression,
`for`, labels, annotations). Rendered on the server with no script and no external asset,
so it works with script off and behind any proxy; a rule with alerts is open (`<details>`),
the others fold, as does each definition beneath its alerts. Every value is escaped: labels
and annotations carry scraped, untrusted text (a workload chooses its own label values).
It fits 1280 px: long SPIFFE IDs wrap.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from html import escape
from typing import Any

from trustusbank.alerts.evaluator import Alert
from trustusbank.alerts.prometheus_format import sample_value
from trustusbank.alerts.rule_states import STATES, GroupState, RuleState
from trustusbank.promql.durations import format_duration

REFRESH_SECONDS = 5
SUBTITLE = (
    "The SOC's alerting rules in force (deploy/10-observability's PrometheusRule and any applied since), "
    f"evaluated by the alert evaluator as Prometheus evaluates them; refreshed every {REFRESH_SECONDS} s."
)

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
  color: #1d1f24; background: #f5f6f8 }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px }
header { padding-top: 18px }
h1 { margin: 0 0 4px; font-size: 26px }
p.sub { margin: 0 0 12px; color: #555 }
nav a { display: inline-block; margin: 0 6px 8px 0; padding: 4px 12px; border-radius: 14px;
  border: 1px solid #c8ccd4; color: #1d1f24; text-decoration: none; background: #fff }
nav a.on { border-color: #1d1f24; font-weight: 600 }
section.group { background: #fff; border: 1px solid #dfe2e7; border-radius: 6px; margin: 14px 0;
  padding: 10px 16px }
h2 { font-size: 18px; margin: 4px 0 8px }
h2 .file, h2 .meta { font-weight: 400; font-size: 13px; color: #666; margin-left: 8px }
details.rule { border-top: 1px solid #eceef1; padding: 6px 0 }
details.rule > summary { cursor: pointer; font-size: 16px }
details.definition { margin: 4px 0 2px 18px } details.definition > summary { cursor: pointer; color: #555;
  font-size: 13px }
.badge { display: inline-block; min-width: 64px; text-align: center; border-radius: 4px;
  padding: 1px 6px; font-size: 12px; font-weight: 600; text-transform: uppercase; color: #fff }
.badge.inactive { background: #4b8a3c }
.badge.pending { background: #b7791f }
.badge.firing { background: #c53030 }
.badge.err { background: #6b46c1 }
.badge.resolved { background: #718096 }
.count { color: #555; font-size: 14px }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f7f8fa; border: 1px solid #eceef1;
  border-radius: 4px; padding: 8px 10px; font-size: 13px; margin: 8px 0 }
table { width: 100%; border-collapse: collapse; table-layout: fixed; margin: 6px 0 4px }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid #eceef1;
  overflow-wrap: anywhere }
th { font-size: 13px; color: #555 }
th.labels { width: 62% } th.state { width: 11% } th.since { width: 17% } th.value { width: 10% }
.label { display: inline-block; margin: 0 4px 4px 0; padding: 1px 6px; border-radius: 3px;
  background: #eef1f6; font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace }
.annotation { font-size: 13px; color: #333; margin-top: 2px }
.annotation strong { font-weight: 600 }
.error { color: #9b2c2c }
.ago { color: #666; font-size: 13px }
footer { color: #555; font-size: 13px; padding-bottom: 24px }
footer ul { margin: 4px 0; padding-left: 18px }
"""


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _ago(now: float, t: float) -> str:
    return format_duration(max(0, round(now - t))) + " ago"


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    return "".join(f'<span class="label">{escape(k)}="{escape(v)}"</span>' for k, v in labels)


def _definition(state: RuleState) -> str:
    rule = state.rule
    expr = rule.expr_text.strip()
    lines = [f"alert: {rule.alert}"]
    lines.append(
        "expr: " + expr if "\n" not in expr else "expr: |\n" + "\n".join(f"  {x}" for x in expr.splitlines())
    )
    if rule.for_seconds:
        lines.append(f"for: {format_duration(rule.for_seconds)}")
    for title, mapping in (("labels", rule.labels), ("annotations", rule.annotations)):
        if mapping:
            lines.append(f"{title}:")
            lines += [f"  {k}: {v}" for k, v in mapping.items()]
    return (
        '<details class="definition"><summary>Rule definition: expression, labels, annotations</summary>'
        f"<pre>{escape(chr(10).join(lines))}</pre></details>"
    )


def _alert_row(alert: Alert, now: float) -> str:
    notes = "".join(
        f'<div class="annotation"><strong>{escape(k)}</strong>: {escape(v)}</div>'
        for k, v in alert.annotations.items()
    )
    return (
        f'<tr class="alert" data-state="{escape(alert.state)}"><td>{_labels(alert.labels)}{notes}</td>'
        f'<td><span class="badge {escape(alert.state)}">{escape(alert.state)}</span></td>'
        f"<td><time>{_when(alert.active_at)}</time> "
        f'<span class="ago">{_ago(now, alert.active_at)}</span></td>'
        f'<td class="value">{escape(sample_value(alert.value))}</td></tr>'
    )


def _rule(state: RuleState, now: float) -> str:
    name = state.rule.alert or ""
    counts = ", ".join(f"{state.count(s)} {s}" for s in ("firing", "pending") if state.count(s))
    health = ' <span class="badge err">error</span>' if state.health == "err" else ""
    error = (
        f'<p class="error">Last evaluation failed: {escape(state.last_error)}</p>' if state.last_error else ""
    )
    if state.alerts:
        rows = "".join(_alert_row(a, now) for a in state.alerts)
        table = (
            '<table><thead><tr><th class="labels">Labels and annotations</th><th class="state">State</th>'
            f'<th class="since">Active since (UTC)</th><th class="value">Value</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    else:
        table = '<p class="none">No active alerts.</p>'
    return (
        f'<details class="rule" id="rule-{escape(name)}" data-rule="{escape(name)}" '
        f'data-state="{state.state}"{" open" if state.alerts or error else ""}>'
        f'<summary><span class="badge {state.state}">{state.state}</span> <strong>{escape(name)}</strong> '
        f'<span class="count">({len(state.alerts)} active{": " + counts if counts else ""})</span>{health}'
        f"</summary>{error}{table}{_definition(state)}</details>"
    )


def _group(group: GroupState, only: str | None, now: float) -> str:
    shown = [r for r in group.rules if r.kind == "alerting" and (only is None or r.state == only)]
    if not shown:
        return ""
    last = group.last_evaluation
    meta = f"every {format_duration(group.interval)}" + (f", evaluated {_ago(now, last)}" if last else "")
    return (
        f'<section class="group" data-group="{escape(group.group.name)}"><h2>{escape(group.group.name)}'
        f'<span class="file">{escape(group.group.source)}</span><span class="meta">{escape(meta)}</span></h2>'
        f"{''.join(_rule(r, now) for r in shown)}</section>"
    )


def _filters(groups: list[GroupState], only: str | None) -> str:
    rules = [r for g in groups for r in g.rules if r.kind == "alerting"]
    links = [f'<a href="/alerts"{" class=on" if only is None else ""}>All ({len(rules)})</a>']
    for state in STATES:
        count = sum(1 for r in rules if r.state == state)
        on = " on" if only == state else ""
        links.append(
            f'<a class="{state}{on}" href="/alerts?state={state}" data-count="{count}">'
            f"{state.capitalize()} ({count})</a>"
        )
    return f'<nav aria-label="Filter rules by state">{"".join(links)}</nav>'


def _resolved(alerts: list[Alert], now: float) -> str:
    if not alerts:
        return ""
    rows = "".join(
        f'<tr><td>{_labels(a.labels)}</td><td><span class="badge resolved">resolved</span></td>'
        f'<td>{_when(a.resolved_at or now)} <span class="ago">{_ago(now, a.resolved_at or now)}</span></td>'
        f'<td class="value">{escape(sample_value(a.value))}</td></tr>'
        for a in alerts
    )
    return (
        '<section class="group resolved"><h2>Resolved in the last 15 minutes'
        '<span class="meta">kept to be mailed and shown; no longer active</span></h2><table><thead><tr>'
        '<th class="labels">Labels</th><th class="state">State</th><th class="since">Resolved (UTC)</th>'
        f'<th class="value">Last value</th></tr></thead><tbody>{rows}</tbody></table></section>'
    )


def _footer(status: dict[str, Any], now: float) -> str:
    targets = "".join(
        f"<li>{escape(str(t['job']))} {escape(str(t['url']))}: "
        f"{'up' if t['up'] else 'DOWN ' + escape(str(t['last_error'] or ''))}</li>"
        for t in status["targets"]
    )
    mailed = f"{status['notifications']} notifications mailed to {escape(str(status['smtp']))}"
    if status.get("smtp") is None:
        mailed = "no SMTP server configured: nothing is mailed"
    evaluated = status.get("evaluated_at")
    last = f", the last {_ago(now, evaluated)}" if evaluated else ""
    error = (
        f'<p class="error">Last error: {escape(str(status["last_error"]))}</p>'
        if status.get("last_error")
        else ""
    )
    return (
        f"<footer><p>{status['evaluations']} evaluations every {format_duration(status['interval'])}{last}; "
        f"{mailed}. "
        'JSON: <a href="/api/v1/rules">/api/v1/rules</a>, <a href="/api/v1/alerts">/api/v1/alerts</a>, '
        'PromQL at <a href="/api/v1/query?query=ALERTS">/api/v1/query</a>.</p>'
        f"{error}<p>Scrape targets:</p><ul>{targets}</ul></footer>"
    )


def render(
    groups: list[GroupState],
    resolved: list[Alert],
    status: dict[str, Any],
    only: str | None = None,
    now: float | None = None,
) -> str:
    """The page; `only` keeps the rules in one state (`?state=firing`), as the filter links ask."""
    at = time.time() if now is None else now
    state = only if only in STATES else None
    body = (
        "".join(_group(g, state, at) for g in groups) or '<p class="none">No alerting rule in this state.</p>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>Alerts · trustusbank alert evaluator</title><style>{STYLE}</style></head><body>"
        f'<header><h1>Alerts</h1><p class="sub">{SUBTITLE}</p>{_filters(groups, state)}</header>'
        f"<main>{body}{_resolved(resolved, at) if state is None else ''}</main>"
        f"{_footer(status, at)}</body></html>"
    )
