"""Durable storage of what the attacker received.

Bodies are kept as raw bytes: a receiver that dropped malformed loot would
under-report the breach. A reset only moves the view's starting point; no
event is ever deleted.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from trustusbank.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, source_addr TEXT NOT NULL,
    path TEXT NOT NULL, content_type TEXT, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS resets (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at_event INTEGER NOT NULL, at REAL NOT NULL
);
"""


def describe_body(body: bytes) -> dict[str, Any]:
    """The body as the API shows it: parsed JSON when it is JSON, else text and base64."""
    try:
        return {"body": json.loads(body.decode("utf-8"))}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {
            "body": None,
            "body_text": body.decode("utf-8", errors="replace"),
            "body_base64": base64.b64encode(body).decode("ascii"),
        }


class EventStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteFile(path, SCHEMA)

    def record(self, *, source_addr: str, path: str, content_type: str | None, body: bytes) -> int:
        with self._db.connect() as conn:
            cur = conn.execute(
                "INSERT INTO events (received_at, source_addr, path, content_type, body)"
                " VALUES (?, ?, ?, ?, ?)",
                (time.time(), source_addr, path, content_type, body),
            )
            return int(cur.lastrowid or 0)

    def _since(self, conn: sqlite3.Connection, everything: bool) -> int:
        if everything:
            return 0
        return int(conn.execute("SELECT COALESCE(MAX(at_event), 0) FROM resets").fetchone()[0])

    def count(self, *, everything: bool = False) -> int:
        with self._db.connect() as conn:
            since = self._since(conn, everything)
            return int(conn.execute("SELECT COUNT(*) FROM events WHERE id > ?", (since,)).fetchone()[0])

    def events(self, *, everything: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """The newest events first."""
        with self._db.connect() as conn:
            since = self._since(conn, everything)
            rows = conn.execute(
                "SELECT * FROM events WHERE id > ? ORDER BY id DESC LIMIT ?", (since, limit)
            ).fetchall()
        return [
            {
                "id": row["id"],
                "received_at": row["received_at"],
                "source_addr": row["source_addr"],
                "path": row["path"],
                "content_type": row["content_type"],
                "size_bytes": len(row["body"]),
                **describe_body(row["body"]),
            }
            for row in rows
        ]

    def reset_view(self) -> int:
        """Start the view afresh; returns how many events the store holds in all."""
        with self._db.connect() as conn:
            last = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])
            conn.execute("INSERT INTO resets (at_event, at) VALUES (?, ?)", (last, time.time()))
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
