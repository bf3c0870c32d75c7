"""transaction-mcp: recent transactions, their details, and fraud flags.

Flags persist in the bank database: fraud-bot's decision must survive a restart,
because it is part of the DORA incident record.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from trustusbank.workloads.bank.db import BankDB, iso
from trustusbank.workloads.bank.ids import CustomerId, TxnId
from trustusbank.workloads.mcp_http import new_server


class Transaction(BaseModel):
    txn_id: str
    customer_id: str
    ts: str = Field(description="When it happened, ISO 8601 UTC.")
    amount: float = Field(description="Negative for money out.")
    currency: str
    merchant: str
    country: str = Field(description="ISO 3166 alpha-2 country of the merchant.")
    flagged: bool = Field(description="Whether it has been flagged as suspicious.")


class RecentTransactions(BaseModel):
    customer_id: str
    days: int
    transactions: list[Transaction] = Field(description="Newest first.")


class FlagResult(BaseModel):
    txn_id: str
    flagged: bool
    reason: str
    flagged_at: str


_SELECT = (
    "SELECT t.*, f.txn_id IS NOT NULL AS flagged FROM transactions t LEFT JOIN flags f ON f.txn_id = t.txn_id"
)


def _transaction(row: sqlite3.Row) -> Transaction:
    return Transaction(
        txn_id=row["txn_id"],
        customer_id=row["customer_id"],
        ts=iso(row["ts"]),
        amount=float(row["amount"]),
        currency=row["currency"],
        merchant=row["merchant"],
        country=row["country"],
        flagged=bool(row["flagged"]),
    )


def build(db: BankDB) -> MCPServer:
    server = new_server(
        "transaction-mcp",
        version="1.0.0",
        instructions="TrustUsBank transactions: recent activity, transaction details, fraud flags.",
    )

    @server.tool()
    def list_recent(
        customer_id: CustomerId,
        days: Annotated[int, Field(ge=1, le=90, description="How many days back to look.")] = 7,
    ) -> RecentTransactions:
        """List a customer's transactions from the last `days` days, newest first."""
        with db.connect() as conn:
            if (
                conn.execute("SELECT 1 FROM customers WHERE customer_id = ?", (customer_id,)).fetchone()
                is None
            ):
                raise ToolError(f"no customer with ID {customer_id}")
            rows = conn.execute(
                f"{_SELECT} WHERE t.customer_id = ? AND t.ts >= strftime('%s','now') - ? ORDER BY t.ts DESC",
                (customer_id, days * 86400),
            ).fetchall()
        return RecentTransactions(
            customer_id=customer_id, days=days, transactions=[_transaction(r) for r in rows]
        )

    @server.tool()
    def get_details(txn_id: TxnId) -> Transaction:
        """Return the full details of one transaction."""
        with db.connect() as conn:
            row = conn.execute(f"{_SELECT} WHERE t.txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            raise ToolError(f"no transaction with ID {txn_id}")
        return _transaction(row)

    @server.tool()
    def flag_suspicious(
        txn_id: TxnId,
        reason: Annotated[str, Field(min_length=1, max_length=500, description="Why it looks fraudulent.")],
    ) -> FlagResult:
        """Mark a transaction as suspicious so that it is held for fraud review. Idempotent."""
        with db.connect() as conn:
            if conn.execute("SELECT 1 FROM transactions WHERE txn_id = ?", (txn_id,)).fetchone() is None:
                raise ToolError(f"no transaction with ID {txn_id}")
            conn.execute(
                "INSERT INTO flags VALUES (?, ?, strftime('%s','now')) ON CONFLICT(txn_id) DO NOTHING",
                (txn_id, reason),
            )
            row = conn.execute("SELECT reason, flagged_at FROM flags WHERE txn_id = ?", (txn_id,)).fetchone()
        return FlagResult(
            txn_id=txn_id, flagged=True, reason=row["reason"], flagged_at=iso(row["flagged_at"])
        )

    return server
