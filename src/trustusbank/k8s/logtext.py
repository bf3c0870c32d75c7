"""ztunnel's and agentgateway's text log lines as the fields their JSON form would carry.

Both proxies log, by default, `<RFC 3339 time>\t<level>\t<scope>\t<message>\t<key=value ...>`
(values with spaces are double-quoted), e.g. ztunnel's access log:
`2025-04-02T10:00:00.1Z\tinfo\taccess\tconnection complete\tsrc.addr=10.0.0.5:4000
src.identity="spiffe://..." ... error="connection closed due to policy rejection: ..."`.
The embedded ztunnel writes the same shape to stderr, so one reader serves both. A line
already in JSON (`logAsJson`) is taken as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

FIELD = re.compile(r'(?:^|\s)([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\S+$")


def _value(raw: str) -> Any:
    if raw.startswith('"'):
        try:
            return json.loads(raw)
        except ValueError:
            return raw.strip('"')
    if raw.isdigit():
        return int(raw)
    return raw


def parse(line: str) -> dict[str, Any] | None:
    """`time`, `level`, `scope`, `message` and every key=value; None if the line is no log record."""
    text = line.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    parts = text.split(None, 3)
    if len(parts) < 4 or not TIME.match(parts[0]):
        return None
    moment, level, scope, rest = parts
    first = FIELD.search(rest)
    message = (rest[: first.start()] if first else rest).strip()
    fields: dict[str, Any] = {"time": moment, "level": level, "scope": scope, "message": message}
    if first:
        for match in FIELD.finditer(rest, first.start()):
            fields[match[1]] = _value(match[2])
    return fields
