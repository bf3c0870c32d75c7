"""The trace page: the waterfall, drawn with CSS widths, and the evidence records behind the trace.

Each bar's offset and width are rules in the page's stylesheet (`#b<n>`), numbers the
console computed, so the page needs no script and no inline style. A deny is drawn red and
badged on the row where it happened, with the record's own words.
"""

from __future__ import annotations

from trustusbank.console.masking import Masker
from trustusbank.console.session_pages import session_link
from trustusbank.console.shell import Page, esc, short, when
from trustusbank.console.traces import TraceView
from trustusbank.console.waterfall import Row

BAR_CLASSES = {"model": "c-model", "waypoint": "c-waypoint", "ztunnel": "c-ztunnel", "MCP server": "c-mcp"}


def _row(n: int, row: Row, masker: Masker) -> str:
    mark = row.mark
    badge = f'<span class="badge {mark.kind}">{esc(mark.kind.upper())}</span> ' if mark else ""
    kinds = ["bar", BAR_CLASSES.get(row.component, "")]
    if row.duration_ms is None:
        kinds.append("point")
    if row.relation:
        kinds.append("rel")
    if mark:
        kinds.append(mark.kind)
    shade = " row-deny" if mark and mark.kind == "deny" else ""
    at = f"{row.offset_ms:+.1f} ms"
    timing = f"{at}, {row.duration_ms:.1f} ms" if row.duration_ms is not None else f"at {at}"
    notes = [timing]
    if row.relation:
        notes.append(row.relation)
    if row.clipped:
        notes.append(row.clipped)
    if mark:
        notes.append(mark.text)
    return (
        f'<div class="cmp{shade}" data-row="{n}">{esc(row.component)}</div>'
        f'<div class="lbl d{row.depth}{shade}">{badge}{esc(masker.text(row.label))}'
        f'<span class="note">{esc(masker.text(" · ".join(notes)))}</span></div>'
        f'<div class="track{shade}"><div class="{" ".join(k for k in kinds if k)}" id="b{n}"></div></div>'
    )


def trace_page(view: TraceView) -> Page:
    page = Page(f"Trace {view.trace_id}")
    waterfall = view.waterfall
    denies = sum(1 for r in waterfall.rows if r.mark and r.mark.kind == "deny")
    sessions = ", ".join(session_link(c, short(c, 40)) for c in view.conversations) or "none"
    page.add(
        f"<p class='muted'>{len(view.spans)} span(s) · axis {esc(when(waterfall.t0))}, "
        f"{(waterfall.t1 - waterfall.t0) * 1000:.1f} ms · components: "
        f"{esc(', '.join(waterfall.components))} · {denies} deny(ies) · session(s): {sessions}</p>"
    )
    if view.evidence_error:
        page.add(f"<p class='muted'>{esc(view.evidence_error)}</p>")
    cells = ['<div class="hd">Component</div><div class="hd">Span</div><div class="hd">Time</div>']
    for n, row in enumerate(waterfall.rows):
        cells.append(_row(n, row, view.masker))
        page.rules.append(f"#b{n} {{ margin-left: {row.left:.3f}%; width: {row.width:.3f}%; }}")
    for depth in sorted({r.depth for r in waterfall.rows}):
        page.rules.append(f".wf .d{depth} {{ padding-left: {0.3 + depth * 1.1:.1f}em; }}")
    page.add(f'<section class="box"><div class="wf">{"".join(cells)}</div></section>')
    if view.evidence:
        rows = "".join(
            f"<tr{' class=row-deny' if x.record.is_deny else ''}><td>#{x.record.seq}</td>"
            f"<td>{esc(x.record.time)}</td><td>{esc(x.record.source)}</td><td>{esc(x.record.kind)}</td>"
            f"<td>{esc(view.masker.text(x.record.summary))}</td><td class='muted'>{esc(x.link)}</td></tr>"
            for x in view.evidence
        )
        page.add(
            '<section class="box"><h2>Evidence records</h2><table class="ev"><tr><th>Seq</th><th>Time</th>'
            f"<th>Source</th><th>Kind</th><th>Summary</th><th>Joined by</th></tr>{rows}</table></section>"
        )
    return page
