"""Durable storage of the SOC's mail.

A message is committed before the SMTP server answers 250, so an accepted alert is
never lost to a restart. The raw bytes are kept beside the parsed fields. A reset
only moves the view's starting point (as the attacker's receiver does); no message
is ever deleted.
"""

from __future__ import annotations

import json
import sqlite3
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from trustusbank.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, peer TEXT NOT NULL,
    peer_identity TEXT, mail_from TEXT NOT NULL, rcpt_to TEXT NOT NULL, subject TEXT NOT NULL,
    alertname TEXT, offender TEXT, body TEXT NOT NULL, raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS resets (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at_message INTEGER NOT NULL, at REAL NOT NULL
);
"""


def _text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # unknown charset or broken encoding: keep what can be read
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)


def _fields(raw: bytes) -> tuple[str, str | None, str | None, str]:
    """Subject, alert name, offender and text body; a message that does not parse is kept as text."""
    try:
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        alertname, offender = parsed.get("X-Alertname"), parsed.get("X-Offender")
        return (
            str(parsed.get("Subject", "")),
            str(alertname) if alertname is not None else None,
            str(offender) if offender is not None else None,
            _text_body(parsed),
        )
    except Exception:  # malformed mail is still mail: never drop what the server accepted
        return "(unparseable message)", None, None, raw.decode("utf-8", errors="replace")


class MailStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteFile(path, SCHEMA)

    def record(
        self, *, raw: bytes, mail_from: str, rcpt_to: list[str], peer: str, peer_identity: str | None
    ) -> int:
        subject, alertname, offender, body = _fields(raw)
        with self._db.connect() as conn:
            cur = conn.execute(
                "INSERT INTO messages (received_at, peer, peer_identity, mail_from, rcpt_to, subject,"
                " alertname, offender, body, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    peer,
                    peer_identity,
                    mail_from,
                    json.dumps(rcpt_to),
                    subject,
                    alertname,
                    offender,
                    body,
                    raw,
                ),
            )
            return int(cur.lastrowid or 0)

    def _since(self, conn: sqlite3.Connection, everything: bool) -> int:
        if everything:
            return 0
        return int(conn.execute("SELECT COALESCE(MAX(at_message), 0) FROM resets").fetchone()[0])

    def count(self, *, everything: bool = False) -> int:
        with self._db.connect() as conn:
            first = self._since(conn, everything)
            return int(conn.execute("SELECT COUNT(*) FROM messages WHERE id > ?", (first,)).fetchone()[0])

    def messages(
        self, *, everything: bool = False, limit: int = 100, received_since: float | None = None
    ) -> list[dict[str, Any]]:
        """The newest messages first."""
        with self._db.connect() as conn:
            first = self._since(conn, everything)
            rows = conn.execute(
                "SELECT * FROM messages WHERE id > ? AND received_at >= ? ORDER BY id DESC LIMIT ?",
                (first, received_since if received_since is not None else 0.0, limit),
            ).fetchall()
        return [self._row(row) for row in rows]

    def message(self, message_id: int) -> dict[str, Any] | None:
        with self._db.connect() as conn:
            row = conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return self._row(row) if row is not None else None

    @staticmethod
    def _row(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "received_at": row["received_at"],
            "peer": row["peer"],
            "peer_identity": row["peer_identity"],
            "mail_from": row["mail_from"],
            "rcpt_to": json.loads(row["rcpt_to"]),
            "subject": row["subject"],
            "alertname": row["alertname"],
            "offender": row["offender"],
            "body": row["body"],
            "size_bytes": len(row["raw"]),
        }

    def reset_view(self) -> int:
        """Start the view afresh; returns how many messages the store holds in all."""
        with self._db.connect() as conn:
            last = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0])
            conn.execute("INSERT INTO resets (at_message, at) VALUES (?, ?)", (last, time.time()))
            return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
