"""ticket-mcp: DORA Art. 17 incident tickets and escalation to a human.

Tickets and notifications persist in the bank database: an incident record that
vanished on restart would be no record at all.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from trustusbank.workloads.bank.db import BankDB, iso
from trustusbank.workloads.bank.ids import CustomerId, TicketId
from trustusbank.workloads.mcp_http import new_server

Severity = Literal["low", "medium", "high", "critical"]
Channel = Literal["slack", "email", "pager"]


class Ticket(BaseModel):
    ticket_id: str
    customer_id: str
    summary: str
    severity: Severity
    status: str
    created_at: str


class Notification(BaseModel):
    ticket_id: str
    channel: Channel
    notified_at: str
    notifications_sent: int = Field(description="How many times this ticket has been escalated so far.")


def build(db: BankDB) -> MCPServer:
    server = new_server(
        "ticket-mcp",
        version="1.0.0",
        instructions="TrustUsBank incidents: every ticket is a DORA Art. 17 incident record.",
    )

    @server.tool()
    def create_ticket(
        customer_id: CustomerId,
        summary: Annotated[
            str, Field(min_length=1, max_length=2000, description="What happened, in a sentence.")
        ],
        severity: Annotated[Severity, Field(description="How bad it is.")] = "medium",
    ) -> Ticket:
        """Open an incident ticket (a DORA Art. 17 record) about a customer's case."""
        ticket_id = f"TICK-{secrets.token_hex(4).upper()}"
        with db.connect() as conn:
            conn.execute(
                "INSERT INTO tickets VALUES (?, ?, ?, ?, 'open', strftime('%s','now'))",
                (ticket_id, customer_id, summary, severity),
            )
            row = conn.execute("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone()
        return Ticket(**{**dict(row), "created_at": iso(row["created_at"])})

    @server.tool()
    def notify_human(
        ticket_id: TicketId,
        channel: Annotated[Channel, Field(description="Where to page the on-call human.")] = "slack",
    ) -> Notification:
        """Escalate an open ticket to the on-call human on slack, email or pager."""
        with db.connect() as conn:
            if conn.execute("SELECT 1 FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone() is None:
                raise ToolError(f"no ticket with ID {ticket_id}")
            cur = conn.execute(
                "INSERT INTO notifications (ticket_id, channel, notified_at)"
                " VALUES (?, ?, strftime('%s','now'))",
                (ticket_id, channel),
            )
            at = conn.execute(
                "SELECT notified_at FROM notifications WHERE id = ?", (cur.lastrowid,)
            ).fetchone()[0]
            sent = conn.execute(
                "SELECT COUNT(*) FROM notifications WHERE ticket_id = ?", (ticket_id,)
            ).fetchone()[0]
        return Notification(
            ticket_id=ticket_id, channel=channel, notified_at=iso(at), notifications_sent=sent
        )

    return server
