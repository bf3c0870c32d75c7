"""Argument types shared by the bank's tools, so every server validates IDs alike."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

CustomerId = Annotated[str, Field(pattern=r"^\d{5}$", description="The customer's 5-digit ID, e.g. 12345.")]
TxnId = Annotated[
    str,
    Field(pattern=r"^txn-\d{3,}$", description="A transaction ID as returned by list_recent, e.g. txn-003."),
]
TicketId = Annotated[
    str, Field(pattern=r"^TICK-[0-9A-F]{8}$", description="A ticket ID as returned by create_ticket.")
]
