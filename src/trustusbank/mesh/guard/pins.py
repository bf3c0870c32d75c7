"""Tool-definition pinning per backend: trust on first use, then every change is drift.

A rug pull keeps a tool's name and changes what it says (its description, read by the
model) or what it takes (its inputSchema). The guard pins each backend's definitions the
first time it sees the backend's listing (as mcp-scan does) and compares later listings by
the sha256 of canonical JSON, so reordered keys are not drift but any changed word is. Pins
live in SQLite in the guard's state directory: a restart must not re-pin a rugged server.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from trustusbank.errors import ProtocolError
from trustusbank.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (
    backend TEXT NOT NULL,
    tool TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    definition TEXT NOT NULL,
    pinned_at REAL NOT NULL,
    PRIMARY KEY (backend, tool)
);
"""

DriftKind = Literal["description", "schema", "new"]


def canonical(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


class ListingError(ProtocolError, ValueError):
    """A tools/list result that has no list of named tools: it cannot be judged."""


def definition(tool: Any) -> dict[str, Any]:
    """What is pinned of a tool: what the model reads (description) and what it may send."""
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise ListingError("a listed tool is not an object with a string name")
    description = tool.get("description") or ""
    schema = tool.get("inputSchema") or {}
    if not isinstance(description, str) or not isinstance(schema, dict):
        raise ListingError(f"tool {tool['name']!r}: description or inputSchema has the wrong type")
    return {"name": tool["name"], "description": description, "inputSchema": schema}


@dataclass(frozen=True)
class Drift:
    tool: str
    kind: DriftKind
    pinned_sha256: str | None
    seen_sha256: str
    seen: dict[str, Any]


@dataclass(frozen=True)
class ListingCheck:
    tools: list[Any]
    """The listing to pass on: drifted tools replaced by their pins, new tools removed."""
    drifts: list[Drift]
    first_use: bool


class PinStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteFile(path, SCHEMA)

    def check(self, backend: str, listed: Any) -> ListingCheck:
        """Pin `backend`'s tools if this is its first listing; else compare and mask the drift.

        One IMMEDIATE transaction: two first listings racing cannot pin a mix of both."""
        if not isinstance(listed, list):
            raise ListingError("result.tools is not a list")
        seen = [(tool, definition(tool)) for tool in listed]
        with self._db.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "SELECT tool, sha256, definition FROM pins WHERE backend = ?", (backend,)
            ).fetchall()
            if not rows:
                now = time.time()
                conn.executemany(
                    "INSERT INTO pins (backend, tool, sha256, definition, pinned_at) VALUES (?, ?, ?, ?, ?)",
                    [(backend, d["name"], sha256(canonical(d)), canonical(d).decode(), now) for _, d in seen],
                )
                return ListingCheck(list(listed), [], first_use=True)
        pins = {row["tool"]: (row["sha256"], json.loads(row["definition"])) for row in rows}
        return _compare(pins, seen)

    def tool(self, backend: str, name: str) -> dict[str, Any] | None:
        """The pinned definition of one tool, or None if it was never pinned."""
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT definition FROM pins WHERE backend = ? AND tool = ?", (backend, name)
            ).fetchone()
        return None if row is None else dict(json.loads(row["definition"]))

    def listing(self) -> list[dict[str, Any]]:
        """Every pin, for the auditor: backend, tool, sha256, when, and the definition."""
        with self._db.connect() as conn:
            rows = conn.execute("SELECT * FROM pins ORDER BY backend, tool").fetchall()
        return [
            {
                "backend": row["backend"],
                "tool": row["tool"],
                "sha256": row["sha256"],
                "pinned_at": row["pinned_at"],
                "definition": json.loads(row["definition"]),
            }
            for row in rows
        ]


def _compare(
    pins: dict[str, tuple[str, dict[str, Any]]], seen: list[tuple[Any, dict[str, Any]]]
) -> ListingCheck:
    tools: list[Any] = []
    drifts: list[Drift] = []
    for original, now in seen:
        digest = sha256(canonical(now))
        pin = pins.get(now["name"])
        if pin is None:
            drifts.append(Drift(now["name"], "new", None, digest, now))
            continue  # never seen before: removed
        pinned_digest, pinned = pin
        if digest == pinned_digest:
            tools.append(original)
            continue
        kind: DriftKind = "description" if now["inputSchema"] == pinned["inputSchema"] else "schema"
        drifts.append(Drift(now["name"], kind, pinned_digest, digest, now))
        tools.append(pinned)
    return ListingCheck(tools, drifts, first_use=False)
