"""`/evidence/<seq>`: one evidence record, its log line verbatim, and the records behind it.

Where a dashboard row's "log line" link lands: every field the record is queried by, the
line or span exactly as the component wrote it (the record keeps it, hashed into the chain),
the file and byte offset it came from, its place in the chain, and what `explain` joins to it
(its trace, the other side of a refused connection, the tool call that was running).
"""

from __future__ import annotations

import json
from html import escape

from trustusbank.console.html import document, moment, trace_links
from trustusbank.evidence import Record, TraceView

FIELDS = (
    "time", "source", "kind", "summary", "src_identity", "dst_identity", "workload", "namespace", "image",
    "digest", "policy", "tool", "flags", "trace_id", "origin", "seq", "prev_hash", "hash",
)  # fmt: skip


def _verbatim(record: Record) -> str:
    try:
        return json.dumps(record.original(), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return record.body


def _fields(record: Record) -> str:
    rows = "".join(
        f'<tr data-field="{name}"><th>{name}</th><td>{escape(str(getattr(record, name) or ""))}</td></tr>'
        for name in FIELDS
    )
    return f'<table class="fields">{rows}</table>'


def _behind(view: TraceView, seq: int) -> str:
    others = [x for x in view.records if x.record.seq != seq]
    if not others:
        return '<p class="none">Nothing on the record is joined to it.</p>'
    rows = "".join(
        f'<tr class="record" data-seq="{x.record.seq}">'
        f'<td><a href="/evidence/{x.record.seq}">#{x.record.seq}</a></td>'
        f"<td><time>{escape(moment(x.record.time))}</time></td><td>{escape(x.record.kind)}</td>"
        f"<td>{escape(x.record.summary)}</td><td>{escape(x.link)}</td></tr>"
        for x in others
    )
    return (
        '<table class="behind"><thead><tr><th class="seq">Record</th><th class="when">Time (UTC)</th>'
        '<th class="kind">Kind</th><th>Summary</th><th class="link">Joined by</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def render(view: TraceView, seq: int, sessions_url: str | None) -> str:
    [record] = [x.record for x in view.records if x.record.seq == seq]
    body = (
        f'<header><p class="back"><a href="/d/dora-evidence">← DORA evidence</a></p>'
        f'<h1>Evidence record #{record.seq} <span class="kind{" deny" if record.is_deny else ""}">'
        f"{escape(record.kind)}</span></h1>"
        f'<p class="sub">{escape(record.summary)}</p></header><main>'
        '<section class="panel"><h2>Traces</h2>'
        f'<p class="links">{trace_links(tuple(view.trace_ids), sessions_url)}</p></section>'
        f'<section class="panel"><h2>The record</h2>{_fields(record)}</section>'
        '<section class="panel"><h2>The log line, as the component wrote it</h2>'
        f'<p class="origin">From {escape(record.origin)} (file, generation, byte offset).</p>'
        f'<pre class="verbatim">{escape(_verbatim(record))}</pre></section>'
        f'<section class="panel"><h2>Behind it</h2>{_behind(view, seq)}</section></main>'
    )
    return document(f"Evidence record #{record.seq} · trustusbank console", body)
