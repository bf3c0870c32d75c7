"""The DORA report as Markdown and as one self-contained HTML page.

Everything in the report that came from a log line is data, and some of it an
attacker's (a tool argument, an image name, a policy name): every value is escaped
for the format it lands in, the HTML page loads nothing from anywhere and runs no
script, and the Markdown escapes what a renderer would turn into links or HTML.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trustusbank.evidence.report import DoraReport

Cell = Any
Table = tuple[Sequence[str], list[Sequence[Cell]]]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def short(digest: str | None) -> str:
    return digest[:19] + "…" if digest and len(digest) > 20 else (digest or "")


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return " ".join(str(value).split())


# -- content, once, for both formats ----------------------------------------
def _chain_line(report: DoraReport) -> str:
    v = report.verification
    if v.ok:
        return f"intact: {v.records} records; head seq {v.head.seq}, hash {v.head.hash}"
    return f"BROKEN at seq {v.bad_seq}: {v.problem}"


def _summary(report: DoraReport) -> list[str]:
    kinds: dict[str, int] = {}
    for group in report.blocked:
        kinds[group.kind] = kinds.get(group.kind, 0) + group.count
    offenders = sorted({g.src_identity for g in report.blocked if g.src_identity})
    alerts = {r.summary.split(" ", 1)[0] for r in report.timeline if r.kind == "alert-fired"}
    window = f"{report.window[0]} to {report.window[1]}" if report.window else "no incident records"
    lines = [
        f"Incident window: {window}",
        f"Tool calls that passed personal data to a tool: {len(report.leaks)}",
        f"Connections that succeeded to a destination later denied"
        f"{' or in ' + ', '.join(report.suspects) if report.suspects else ''}: "
        f"{sum(g.count for g in report.exfil)}",
        "Denies: "
        + (", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) if kinds else "none on record"),
        "Offending identities: " + (", ".join(offenders) if offenders else "none"),
        "Alerts fired: " + (", ".join(sorted(alerts)) if alerts else "none on record"),
        f"Evidence chain: {_chain_line(report)}",
    ]
    return lines


def _leak_table(report: DoraReport) -> Table:
    rows: list[Sequence[Cell]] = [
        (
            x.record.time,
            x.record.workload,
            f"{x.record.tool} → {x.record.dst_identity or '?'}",
            "; ".join(f"{path}: {', '.join(keys)}" for path, keys in x.fields.items()),
            x.delivered_to or "none",
            x.record.trace_id,
            f"#{x.record.seq}",
        )
        for x in report.leaks
    ]
    header = (
        "time",
        "agent",
        "tool → server",
        "personal data (fields)",
        "server connected to, during the call",
        "trace",
        "record",
    )
    return header, rows


def _exfil_table(report: DoraReport) -> Table:
    rows: list[Sequence[Cell]] = [
        (g.first, g.last, g.count, g.src_identity, g.dst_identity, g.image, g.digests, g.seqs[:10])
        for g in report.exfil
    ]
    return (
        "first",
        "last",
        "connections",
        "source identity",
        "destination",
        "image",
        "digest",
        "records",
    ), rows


def _blocked_table(report: DoraReport) -> Table:
    rows: list[Sequence[Cell]] = [
        (g.first, g.last, g.count, g.kind, g.src_identity, g.image, g.digests, g.dst_identity, g.policy)
        for g in report.blocked
    ]
    header = (
        "first",
        "last",
        "count",
        "kind",
        "offending identity",
        "image",
        "digest",
        "destination",
        "policy",
    )
    return header, rows


def _failed_table(report: DoraReport) -> Table:
    rows: list[Sequence[Cell]] = [
        (g.first, g.last, g.count, g.kind, g.src_identity, g.dst_identity, g.seqs) for g in report.failed
    ]
    return ("first", "last", "count", "kind", "source identity", "destination", "records"), rows


def _timeline_table(report: DoraReport) -> Table:
    rows: list[Sequence[Cell]] = [
        (
            r.time,
            r.source,
            r.kind,
            r.summary,
            r.src_identity,
            f"{r.image or ''} {short(r.digest)}".strip(),
            r.trace_id,
            f"#{r.seq}",
        )
        for r in report.timeline
    ]
    return ("time", "source", "kind", "what", "identity", "image / digest", "trace", "record"), rows


def _register_table(report: DoraReport) -> Table:
    rows: list[Sequence[Cell]] = []
    for entry in report.register:
        pinned = entry.get("pinned") or {}
        running = report.running.get(str(entry.get("name")))
        signature = entry.get("signature") or {}
        rows.append(
            (
                entry.get("name"),
                entry.get("publisher"),
                entry.get("version"),
                entry.get("classification"),
                entry.get("image"),
                entry.get("spiffe_id"),
                pinned.get("digest"),
                running or "unknown",
                "unknown" if running is None else running == pinned.get("digest"),
                pinned.get("tool_list_hash"),
                signature.get("status") if isinstance(signature, dict) else signature,
            )
        )
    header = (
        "provider entry",
        "publisher",
        "version",
        "classification",
        "image",
        "SPIFFE ID",
        "pinned digest",
        "running digest",
        "running = pinned",
        "tool-list hash",
        "signature",
    )
    return header, rows


SECTIONS: tuple[tuple[str, str, Callable[[DoraReport], Table], str], ...] = (
    (
        "What leaked: personal data passed to tools",
        "leaks",
        _leak_table,
        "Tool calls whose arguments carried personal data (field names only; the values are in the "
        "evidence records named), and where the server connected while the call ran, among the "
        "destinations below.",
    ),
    (
        "What left: connections that succeeded where the defence now denies",
        "exfil",
        _exfil_table,
        "Connections that completed from a source to a destination that the same source was later "
        "denied (or in a suspect namespace), one per connection.",
    ),
    (
        "What was blocked",
        "blocked",
        _blocked_table,
        "Every deny, grouped by kind, offending identity, destination and policy, with the image and "
        "the digest the offending workload was running.",
    ),
    (
        "What failed: errors, not refusals",
        "failed",
        _failed_table,
        "Requests the waypoint allowed that got no answer (the backend hung up or failed, or the "
        "waypoint itself erred), grouped by kind, source and destination. No policy refused them: "
        "they are not among the blocked.",
    ),
    (
        "Timeline",
        "timeline",
        _timeline_table,
        "Image pushes and restarts, policy changes, alerts, personal data passed to tools, the "
        "connections above and every deny, in time order.",
    ),
)


# -- Markdown -----------------------------------------------------------------
def md(value: Cell) -> str:
    text = html_lib.escape(_text(value), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_table(table: Table) -> list[str]:
    header, rows = table
    if not rows:
        return ["_None on record._", ""]
    lines = ["| " + " | ".join(md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(report: DoraReport) -> str:
    v = report.verification
    out = [
        "# DORA evidence report",
        "",
        f"Generated {md(report.generated)} from the evidence store of {md(report.state)}.",
        "",
        f"**Evidence chain:** {md(_chain_line(report))}",
        "",
        f"Keep the head: `trustusbank evidence verify --anchor {v.head.seq}:{v.head.hash}` later proves "
        "that no record up to it was changed or removed.",
        "",
        "## Art. 17 — ICT-related incident evidence",
        "",
        *[f"- {md(line)}" for line in _summary(report)],
        "",
    ]
    for title, _, table, note in SECTIONS:
        out += [f"### {title}", "", md(note), "", *_md_table(table(report))]
    if report.timeline_truncated:
        out += [md(f"({report.timeline_truncated} later timeline records not shown; query the store.)"), ""]
    out += ["## Art. 28 — register of third-party ICT service providers", ""]
    if report.register_error:
        out += [f"**The register could not be read:** {md(report.register_error)}", ""]
    out += _md_table(_register_table(report))
    return "\n".join(out)


# -- HTML ---------------------------------------------------------------------
def h(value: Cell) -> str:
    return html_lib.escape(_text(value), quote=True)


_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#111;max-width:1400px}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:2px solid #333}h3{margin-top:1.5em}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}
th,td{border:1px solid #bbb;padding:4px 6px;text-align:left;vertical-align:top;word-break:break-word}
th{background:#eee}.ok{color:#05620f;font-weight:bold}.bad{color:#a00;font-weight:bold}
.note{color:#444}code{font-size:.95em}
"""


def _html_table(table: Table) -> str:
    header, rows = table
    if not rows:
        return '<p class="note"><em>None on record.</em></p>'
    head = "".join(f"<th>{h(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{h(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html(report: DoraReport) -> str:
    v = report.verification
    status = "ok" if v.ok else "bad"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing to fetch, nothing to run: a policy that says so, for viewers that honour it.
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        "<title>DORA evidence report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>DORA evidence report</h1>",
        f"<p>Generated {h(report.generated)} from the evidence store of <code>{h(report.state)}</code>.</p>",
        f'<p>Evidence chain: <span class="{status}">{h(_chain_line(report))}</span></p>',
        f'<p class="note">Keep the head: <code>trustusbank evidence verify --anchor {h(v.head.seq)}:'
        f"{h(v.head.hash)}</code> later proves that no record up to it was changed or removed.</p>",
        "<h2>Art. 17 — ICT-related incident evidence</h2>",
        "<ul>" + "".join(f"<li>{h(line)}</li>" for line in _summary(report)) + "</ul>",
    ]
    for title, anchor, table, note in SECTIONS:
        parts += [
            f'<h3 id="{anchor}">{h(title)}</h3>',
            f'<p class="note">{h(note)}</p>',
            _html_table(table(report)),
        ]
    if report.timeline_truncated:
        parts.append(
            f"<p>({h(report.timeline_truncated)} later timeline records not shown; query the store.)</p>"
        )
    parts.append("<h2>Art. 28 — register of third-party ICT service providers</h2>")
    if report.register_error:
        parts.append(f'<p class="bad">The register could not be read: {h(report.register_error)}</p>')
    parts += [_html_table(_register_table(report)), "</body></html>"]
    return "\n".join(parts) + "\n"
