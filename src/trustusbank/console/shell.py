"""The console's pages: server-rendered HTML, no script, one stylesheet per page allowed by its hash.

Everything shown comes from the cluster, and much of it from pods (an agent's card, a tool's
arguments, a span's name), so every value goes through `esc` and the page's
Content-Security-Policy allows no script at all: an injected tag is text, and would not run
if it were not. Per-row geometry (a waterfall bar's offset and width) is written as CSS rules
in the page's own `<style>`, whose hash the policy names, so no inline style attribute is
needed either.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.responses import HTMLResponse

STYLE = """
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1d2330; background: #f5f6f8; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.5em;
  background: #1d2330; color: #fff; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header form { margin-left: auto; display: flex; gap: .4em; }
header input { width: 22em; font: inherit; padding: .15em .4em; }
main { max-width: 1240px; margin: 0 auto; padding: 1em 1.5em 3em; }
h1 { font-size: 1.35em; margin: .4em 0 .6em; overflow-wrap: anywhere; }
h2 { font-size: 1.1em; margin: 0 0 .4em; overflow-wrap: anywhere; }
h3 { font-size: 1em; margin: .8em 0 .3em; }
a { color: #1f5fbf; }
section.box { background: #fff; border: 1px solid #d8dce3; border-radius: 6px; padding: .9em 1.1em;
  margin: 0 0 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .25em .5em; border-bottom: 1px solid #eceef2;
  overflow-wrap: anywhere; }
th { font-weight: 600; color: #4a5263; }
pre { margin: .2em 0; padding: .4em .6em; background: #f1f3f6; border-radius: 4px; white-space: pre-wrap;
  overflow-wrap: anywhere; max-height: 24em; overflow: auto; font-size: 12.5px; }
.muted { color: #687186; }
.tag { display: inline-block; padding: 0 .45em; margin: 0 .2em .1em 0; border-radius: 3px;
  background: #e7ebf2; font-size: 12px; }
.badge { display: inline-block; padding: 0 .45em; border-radius: 3px; font-size: 12px; font-weight: 700;
  color: #fff; background: #687186; }
.badge.deny { background: #b3261e; }
.badge.error { background: #c26a00; }
.msg { margin: .3em 0; padding: .4em .7em; border-radius: 6px; max-width: 70em; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.msg.user { background: #e8f0fe; }
.msg.agent { background: #eef7ee; }
.msg .who { display: block; font-size: 12px; font-weight: 600; color: #4a5263; }
ol.calls { list-style: none; padding-left: 0; margin: .3em 0; }
ol.calls ol.calls { padding-left: 1.4em; border-left: 2px solid #d8dce3; }
li.call { margin: .35em 0; }
li.call > .head { font-weight: 600; }
li.call.failed > .head { color: #b3261e; }
.handoff { margin: .4em 0 .4em .2em; padding: .3em .7em; border: 1px dashed #9aa3b5; border-radius: 6px; }
details > summary { cursor: pointer; color: #4a5263; }
.wf { display: grid; grid-template-columns: 9em minmax(18em, 30em) 1fr; font-size: 12.5px; }
.wf > div { padding: 2px 4px; border-bottom: 1px solid #eceef2; min-width: 0; overflow-wrap: anywhere; }
.wf .hd { font-weight: 600; color: #4a5263; }
.wf .track { position: relative; background: #fafbfc; }
.wf .bar { height: 12px; margin-top: 3px; border-radius: 2px; background: #5b8def; }
.wf .c-model .bar, .wf .bar.c-model { background: #8e6bd8; }
.wf .bar.c-waypoint { background: #2e9e8f; }
.wf .bar.c-ztunnel { background: #9aa3b5; }
.wf .bar.c-mcp { background: #d08b2c; }
.wf .bar.point { width: 4px; background: #1d2330; }
.wf .bar.rel { opacity: .55; }
.wf .bar.deny, .wf .bar.error { background: #b3261e; opacity: 1; }
.row-deny { background: #fdecea; }
table.ev td:nth-child(-n+4), table.ev th { white-space: nowrap; overflow-wrap: normal; }
.wf .note { display: block; color: #687186; font-size: 11.5px; }
"""


def esc(value: object) -> str:
    """Text (or any value, as text) safe in HTML content and in quoted attributes."""
    return html.escape(str(value), quote=True)


def path_part(value: str) -> str:
    """One URL path segment for a value that may hold anything (a context id is the caller's choice)."""
    return quote(value, safe="")


def when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@dataclass
class Page:
    title: str
    body: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # this page's own CSS rules (geometry), numbers only

    def add(self, *parts: str) -> None:
        self.body.extend(parts)

    def render(self) -> tuple[str, str]:
        """The document and its Content-Security-Policy."""
        style = STYLE + "\n".join(self.rules)
        csp = "; ".join(
            [
                "default-src 'none'",
                f"style-src 'sha256-{_hash(style)}'",
                "form-action 'self'",
                "base-uri 'none'",
                "frame-ancestors 'none'",
            ]
        )
        document = (
            "<!doctype html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)} · trustusbank console</title><style>{style}</style></head><body>"
            '<header><a href="/">Agents</a><span class="muted">sessions · tool calls · traces</span>'
            '<form method="get" action="/traces"><label for="trace-id" class="muted">Trace</label>'
            '<input id="trace-id" name="id" placeholder="32 hex digits" autocomplete="off">'
            "<button>Open</button></form></header>"
            f"<main><h1>{esc(self.title)}</h1>{''.join(self.body)}</main></body></html>"
        )
        return document, csp

    def response(self, status: int = 200) -> HTMLResponse:
        document, csp = self.render()
        headers = {
            "content-security-policy": csp,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cache-control": "no-store",
        }
        return HTMLResponse(document, status_code=status, headers=headers)


def tags(values: Iterable[object]) -> str:
    return "".join(f'<span class="tag">{esc(v)}</span>' for v in values)


def not_found(title: str, message: str) -> HTMLResponse:
    page = Page(title)
    page.add(f'<section class="box"><p>{esc(message)}</p><p><a href="/">All agents</a></p></section>')
    return page.response(404)
