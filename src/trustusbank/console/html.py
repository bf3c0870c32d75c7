"""The console pages' shared HTML: the document around a page, numbers, times, evidence rows.

Every value that came from the cluster is escaped where it lands (text and attributes
alike): labels, identities, image names and log lines are chosen by workloads, and one of
them is an attacker's. Style and script are files served by the console itself, so the
pages' Content-Security-Policy allows nothing inline and nothing from elsewhere.
"""

from __future__ import annotations

import math
from html import escape

from trustusbank.console.evidence_view import EvidenceRow, Rows

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def document(title: str, body: str, *, refresh: float | None = None, charts: bool = False) -> str:
    """A whole page: its title, an optional self-reload, the chart script only where charts are."""
    reload = f'<meta http-equiv="refresh" content="{round(refresh)}">' if refresh else ""
    styles = ['<link rel="stylesheet" href="/static/console.css">']
    scripts = []
    if charts:
        styles.insert(0, '<link rel="stylesheet" href="/static/uplot/uPlot.min.css">')
        scripts = [
            '<script src="/static/uplot/uPlot.iife.min.js" defer></script>',
            '<script src="/static/dashboard.js" defer></script>',
        ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'{reload}<link rel="icon" href="data:,"><title>{escape(title)}</title>'
        f"{''.join(styles)}{''.join(scripts)}</head>"
        f"<body>{body}</body></html>"
    )


def number(value: float | None) -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def moment(iso: str) -> str:
    """An evidence time (`2024-01-01T10:00:00.123456Z`) to the millisecond, as a reader scans it."""
    return iso.replace("T", " ")[:23]


def trace_links(trace_ids: tuple[str, ...], sessions_url: str | None) -> str:
    if not trace_ids:
        return '<span class="none">no trace</span>'
    if sessions_url is None:
        return "".join(f'<span class="trace">trace {escape(t)}</span>' for t in trace_ids)
    base = sessions_url.rstrip("/")
    return "".join(
        f'<a class="trace" href="{escape(base)}/traces/{escape(t)}">trace {escape(t[:12])}…</a>'
        for t in trace_ids
    )


def _row(row: EvidenceRow, sessions_url: str | None) -> str:
    r = row.record
    towards = f'<div class="to">→ {escape(r.dst_identity)}</div>' if r.dst_identity else ""
    who = f'<span class="id">{escape(r.src_identity or "–")}</span>{towards}'
    workload = f"{r.namespace}/{r.workload}" if r.namespace and r.workload else (r.workload or "")
    image = (
        f'<div class="workload">{escape(workload)}</div>'
        f'<div class="image">{escape(r.image or "image unknown")}</div>'
        f'<div class="digest">{escape(r.digest or "digest unknown")}</div>'
    )
    what = f'<div class="kind">{escape(r.kind)}</div>'
    if r.policy:
        what += f'<div class="policy">policy {escape(r.policy)}</div>'
    what += f'<div class="summary">{escape(r.summary)}</div>'
    log = f'<a class="log" href="/evidence/{r.seq}">log line #{r.seq}</a>'
    links = trace_links(row.trace_ids, sessions_url) + log
    return (
        f'<tr class="record" data-seq="{r.seq}" data-kind="{escape(r.kind)}">'
        f"<td><time>{escape(moment(r.time))}</time></td><td>{who}</td><td>{image}</td><td>{what}</td>"
        f'<td class="links">{links}</td></tr>'
    )


def evidence_table(rows: Rows, sessions_url: str | None, empty: str) -> str:
    if not rows.rows:
        return f'<p class="none">{escape(empty)}</p>'
    more = f'<p class="more">Only the latest {len(rows.rows)} are shown.</p>' if rows.more else ""
    body = "".join(_row(row, sessions_url) for row in rows.rows)
    return (
        '<table class="evidence"><thead><tr><th class="when">Time (UTC)</th>'
        '<th class="who">Identity (SPIFFE, proven by mTLS)</th><th class="image">Workload, image, digest</th>'
        '<th class="what">What</th><th class="links">Trace, log line</th></tr></thead>'
        f"<tbody>{body}</tbody></table>{more}"
    )
