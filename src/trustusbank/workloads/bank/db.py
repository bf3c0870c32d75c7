"""The bank's SQLite database: schema and first-start seeding."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from trustusbank.sqlite_file import SqliteFile
from trustusbank.workloads.bank import seed_data

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL,
    address TEXT NOT NULL, date_of_birth TEXT NOT NULL, ni_number TEXT NOT NULL,
    kyc_status TEXT NOT NULL, balance TEXT NOT NULL, currency TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    txn_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(customer_id),
    ts REAL NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, merchant TEXT NOT NULL,
    country TEXT NOT NULL, synthetic INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS flags (
    txn_id TEXT PRIMARY KEY REFERENCES transactions(txn_id), reason TEXT NOT NULL, flagged_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, summary TEXT NOT NULL,
    severity TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ticket_id TEXT NOT NULL REFERENCES tickets(ticket_id),
    channel TEXT NOT NULL, notified_at REAL NOT NULL
);
"""


class BankDB(SqliteFile):
    """The bank database, seeded on first open."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)
        with self.connect() as conn:
            if conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 0:
                _seed(conn)
            _roll_synthetic_forward(conn)


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _seed(conn: sqlite3.Connection) -> None:
    conn.executemany(
        "INSERT INTO customers VALUES (:customer_id, :name, :email, :phone, :address, :date_of_birth,"
        " :ni_number, :kyc_status, :balance, :currency)",
        seed_data.CUSTOMERS,
    )
    now = _now()
    conn.executemany(
        "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
        [
            (txn, cust, now - age.total_seconds(), amount, ccy, merchant, country)
            for txn, cust, age, amount, ccy, merchant, country in seed_data.TRANSACTIONS
        ],
    )
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('anchored_at', ?)", (repr(now),))


def _roll_synthetic_forward(conn: sqlite3.Connection) -> None:
    """Keep the demo's synthetic transactions as recent as they were when seeded.

    Without this, a database seeded last week would answer "no recent
    transactions" and the demo would silently change its story.
    """
    row = conn.execute("SELECT value FROM meta WHERE key = 'anchored_at'").fetchone()
    if row is None:
        return
    now = _now()
    shift = now - float(row["value"])
    conn.execute("UPDATE transactions SET ts = ts + ? WHERE synthetic = 1", (shift,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'anchored_at'", (repr(now),))


def differs_from_seed(path: Path) -> list[str]:
    """What a bank database file holds beyond (or instead of) its seed, read without changing it.

    Empty when it is as seeded (synthetic timestamps aside, they are rolled forward anyway) or not
    there yet; a pod that starts without its file seeds it afresh."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        found = []
        for table in ("flags", "tickets", "notifications"):
            count = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            if count:
                found.append(f"{count} {table}")
        customers = [dict(r) for r in conn.execute("SELECT * FROM customers ORDER BY customer_id")]
        if customers != sorted(seed_data.CUSTOMERS, key=lambda c: str(c["customer_id"])):
            found.append("changed customers")
        rows = conn.execute(
            "SELECT txn_id, customer_id, amount, currency, merchant, country FROM transactions"
        )
        seeded = {(t, c, a, ccy, m, country) for t, c, _, a, ccy, m, country in seed_data.TRANSACTIONS}
        if {tuple(r) for r in rows} != seeded:
            found.append("changed transactions")
        return found
    finally:
        conn.close()


def iso(ts: float) -> str:
    """A UTC timestamp as ISO 8601, second precision, `Z` suffix."""
    return datetime.fromtimestamp(ts, UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
