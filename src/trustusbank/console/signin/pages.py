"""The sign-in chain's own pages: the login form, refusals, signed out. Small, plain, escaped.

No script at all, and the one stylesheet is allowed by its hash. The login page may not be
framed (no clickjacking of a password form), and its form may post only to the provider and,
since a browser applies `form-action` to the redirect after the post, to the one front door
the sign-in returns to.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from starlette.responses import HTMLResponse

STYLE = (
    "body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1d2330;background:#f5f6f8}"
    "main{max-width:28em;margin:4em auto;padding:1.5em 2em;background:#fff;border:1px solid #d8dce3;"
    "border-radius:8px}h1{font-size:1.3em;margin:0 0 .8em}label{display:block;margin:.7em 0 .2em}"
    "input{width:100%;font:inherit;padding:.35em .5em;box-sizing:border-box}"
    "button{margin-top:1.2em;font:inherit;padding:.4em 1.4em}"
    ".problem{color:#b3261e;font-weight:600}.muted{color:#687186;font-size:.9em}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def _headers(form_targets: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src data:; base-uri 'none'; "
            f"form-action {form_targets}; frame-ancestors 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # a code or state in the URL goes nowhere else
        "Cache-Control": "no-store",
    }


def page(title: str, body: str, status: int = 200, *, form_targets: str = "'none'") -> HTMLResponse:
    """`body` is HTML the caller built, every value in it escaped already."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{escape(title)}</title><style>{STYLE}</style></head>'
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_headers(form_targets))


def refusal(title: str, why: str, status: int, again: str | None = None) -> HTMLResponse:
    """A clear page saying what was refused and why, and where to start over."""
    link = f'<p><a href="{escape(again)}">Sign in again</a></p>' if again else ""
    body = f'<h1>{escape(title)}</h1><p class="problem">{escape(why)}</p>{link}'
    return page(title, body, status)
