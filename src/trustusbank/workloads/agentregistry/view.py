"""The registry page rendered on the server, so that it reads the same with script disabled.

Every value shown comes from a catalogue, a manifest or an image store, and a
third party names its own server: each one is escaped here, where it meets the
markup. The template holds only markup and `{{slot}}`s, filled in one pass so
that text put into a slot is never read as a slot itself.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

SLOT = re.compile(r"\{\{(\w+)\}\}")
SHORT_HEX = 8


def fill(template: str, slots: Mapping[str, str]) -> str:
    """`template` with each `{{name}}` replaced by `slots[name]`; a slot not given is a KeyError."""
    return SLOT.sub(lambda match: slots[match.group(1)], template)


def inline_hashes(template: str, tag: str) -> list[str]:
    """CSP source expressions (`'sha256-…'`) for each inline `<tag>` block, so that only these run."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", template, flags=re.DOTALL)
    if any(SLOT.search(block) for block in blocks):
        raise ValueError(f"a <{tag}> block of the page has a slot: its hash would not hold")
    return ["'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'" for b in blocks]


def short_digest(value: str) -> str:
    """`sha256:1a2b3c4d…`: enough to tell two digests apart on screen."""
    algorithm, sep, hexpart = value.partition(":")
    if sep and len(hexpart) > SHORT_HEX:
        return f"{algorithm}:{hexpart[:SHORT_HEX]}…"
    return value if len(value) <= SHORT_HEX + 8 else value[: SHORT_HEX + 7] + "…"


def digest_html(value: str | None, key: str, differs: bool = False) -> str:
    """A digest shown short, the full value in the title and, opened, as code to copy; `differs`
    marks one that is not the pinned value."""
    if not value:
        return '<span class="none">none</span>'
    full = escape(value)
    return (
        f'<details class="digest{" differs" if differs else ""}" data-key="{escape(key)}"><summary>'
        f'<code title="{full}">{escape(short_digest(value))}</code></summary>'
        f'<code class="full">{full}</code></details>'
    )


def _text(value: Any) -> str:
    return escape(str(value))


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int | float):
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def digest_verdict(entry: Mapping[str, Any]) -> str:
    """`match`, `drift` or `unchecked` (no image store); anything but a confirmed match is drift."""
    if entry.get("matches_pin") is True:
        return "match"
    if entry.get("matches_pin") is None and entry.get("running") is None:
        return "unchecked"
    return "drift"


def tools_verdict(entry: Mapping[str, Any]) -> str:
    """As `digest_verdict`, for the tool list the running build advertises."""
    if entry.get("tool_list_matches_pin") is True:
        return "match"
    if entry.get("tool_list_matches_pin") is None and entry.get("running") is None:
        return "unchecked"
    return "drift"


def signature_verdict(entry: Mapping[str, Any]) -> str:
    """`org` is the only good status; not checked is said as such; the rest is bad."""
    status = str(entry.get("signature", {}).get("status", "error"))
    return "ok" if status == "org" else "unchecked" if status == "not-checked" else "drift"


def _verdict(verdict: str, said: str) -> str:
    return f'<span class="verdict {"ok" if verdict == "match" else verdict}">{said}</span>'


def _server_cell(entry: Mapping[str, Any]) -> str:
    return (
        f'<strong class="name">{_text(entry["name"])}</strong>'
        f'<span class="sub">{_text(entry["title"])}</span>'
        f'<span class="sub">{_text(entry["publisher"])} · {_text(entry["version"])} · '
        f'<span class="class">{_text(entry["classification"])}</span></span>'
    )


def _path(value: Any) -> str:
    """Escaped, with a line-break opportunity after each `/`, so that names wrap between segments."""
    return _text(value).replace("/", "/<wbr>")


def _identity_cell(entry: Mapping[str, Any]) -> str:
    return (
        f'<span class="label">image</span><code class="wrap">{_path(entry["image"])}</code>'
        f'<span class="label">SPIFFE ID</span><code class="wrap">{_path(entry["spiffe_id"])}</code>'
    )


def _digest_cell(entry: Mapping[str, Any]) -> str:
    name, pinned, running = entry["name"], entry["pinned"], entry.get("running")
    verdict = digest_verdict(entry)
    lines = [
        f'<span class="label">pinned {_text(_when(pinned.get("registered_at")))}</span>'
        + digest_html(pinned.get("digest"), f"{name}|pinned"),
    ]
    if running is not None:
        lines.append(
            '<span class="label">running now</span>'
            + digest_html(running.get("digest"), f"{name}|running", differs=verdict == "drift")
        )
    said = {
        "match": "runs the pinned digest",
        "drift": "same tag, different digest: not the pinned build"
        if running is not None
        else "the running digest cannot be read",
        "unchecked": "running digest not checked",
    }[verdict]
    lines.append(_verdict(verdict, said))
    return "".join(lines)


def _tools_cell(entry: Mapping[str, Any]) -> str:
    name, running = entry["name"], entry.get("running")
    verdict = tools_verdict(entry)
    lines = [
        f'<span class="tools">{_text(", ".join(map(str, entry["tools"])))}</span>',
        '<span class="label">pinned hash</span>'
        + digest_html(entry["pinned"].get("tool_list_hash"), f"{name}|tools-pinned"),
    ]
    if running is not None:
        current = running.get("tool_list_hash")
        lines.append(
            '<span class="label">running hash</span>'
            + (
                digest_html(current, f"{name}|tools-running", differs=verdict == "drift")
                if current
                else '<span class="none">unknown: a build the registry never listed</span>'
            )
        )
    said = {"match": "same tool list", "drift": "tool list differs", "unchecked": "not checked"}[verdict]
    lines.append(_verdict(verdict, said))
    return "".join(lines)


def _signature_cell(entry: Mapping[str, Any]) -> str:
    signature = entry.get("signature", {})
    status = signature.get("status", "error")
    return (
        f'<span class="badge {signature_verdict(entry)}">{_text(status)}</span>'
        f'<span class="detail">{_text(signature.get("detail", ""))}</span>'
    )


def server_row(entry: Mapping[str, Any]) -> str:
    """One registered server: who it is, what it runs against its pins, who signed it."""
    verdicts = (digest_verdict(entry), tools_verdict(entry), signature_verdict(entry))
    state = "drift" if "drift" in verdicts else "unchecked" if "unchecked" in verdicts else "ok"
    cells = (
        _server_cell(entry),
        _identity_cell(entry),
        _digest_cell(entry),
        _tools_cell(entry),
        _signature_cell(entry),
    )
    return (
        f'<tr class="{state}" data-name="{_text(entry["name"])}" data-digest="{verdicts[0]}"'
        f' data-tools="{verdicts[1]}" data-signature="{_text(entry.get("signature", {}).get("status"))}">'
        + "".join(f"<td>{cell}</td>" for cell in cells)
        + "</tr>"
    )


def build_rows(entry: Mapping[str, Any]) -> str:
    """Each build the registry knows behind the entry's tag, judged against the pin."""
    rows = []
    for build in entry["builds"]:
        faults = [
            text
            for ok, text in (
                (build["digest_matches_pin"], "digest differs"),
                (build["tool_list_matches_pin"], "tool list differs"),
            )
            if not ok
        ]
        state = "drift" if faults else "ok"
        key = f"{entry['name']}|{build['variant']}"
        rows.append(
            f'<tr class="{state}" data-name="{_text(entry["name"])}" data-build="{_text(build["variant"])}">'
            f"<td>{_text(entry['name'])}</td><td>{_text(build['variant'])}</td>"
            f"<td>{digest_html(build['digest'], key + '|digest')}</td>"
            f"<td>{digest_html(build['tool_list_hash'], key + '|tools')}</td>"
            f"<td>{_text(', '.join(map(str, build['tools'])))}</td>"
            f'<td><span class="verdict {state}">{", ".join(faults) or "matches the pin"}</span></td></tr>'
        )
    return "".join(rows)


def summary(entries: Sequence[Mapping[str, Any]]) -> str:
    """One line a presenter reads first: which servers run something other than what was registered."""
    drifting = [e for e in entries if "drift" in (digest_verdict(e), tools_verdict(e), signature_verdict(e))]
    if drifting:
        names = ", ".join(_text(e["name"]) for e in drifting)
        return (
            f'<p class="summary drift">{len(drifting)} of {len(entries)} registered servers run an image'
            f" that differs from the register or is not signed by the org: {names}</p>"
        )
    if any(digest_verdict(e) == "unchecked" for e in entries):
        return (
            f'<p class="summary unchecked">{len(entries)} registered servers; the running images are'
            " not checked (no image store is configured)</p>"
        )
    return (
        f'<p class="summary ok">All {len(entries)} registered servers run their pinned digest,'
        " signed by the org</p>"
    )


def render_page(template: str, entries: Sequence[Mapping[str, Any]], now: float) -> str:
    """The whole page for these entries (each already joined with its running image)."""
    return fill(
        template,
        {
            "summary": summary(entries),
            "rendered_at": _text(_when(now)),
            "servers": "".join(server_row(e) for e in entries),
            "builds": "".join(build_rows(e) for e in entries),
        },
    )
