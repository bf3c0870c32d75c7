"""account-mcp: balances and full customer profiles.

get_profile returns every PII field, as a typical bank backend does: the service
trusts an authorised caller to mask before display. That trust is exactly what a
prompt injection abuses, which is why who may call it is the mesh's business.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from trustusbank.workloads.bank.db import BankDB
from trustusbank.workloads.bank.ids import CustomerId
from trustusbank.workloads.mcp_http import new_server


class Balance(BaseModel):
    customer_id: str
    balance: float = Field(description="Cleared balance, in `currency`.")
    currency: str = Field(description="ISO 4217 code of the account's currency.")


class Profile(BaseModel):
    customer_id: str
    name: str
    email: str
    phone: str
    address: str
    date_of_birth: str = Field(description="YYYY-MM-DD.")
    ni_number: str = Field(description="UK National Insurance number.")
    kyc_status: str = Field(description="verified | under_review | failed.")


def _customer(db: BankDB, customer_id: str) -> dict[str, str]:
    with db.connect() as conn:
        row = conn.execute("SELECT * FROM customers WHERE customer_id = ?", (customer_id,)).fetchone()
    if row is None:
        raise ToolError(f"no customer with ID {customer_id}")
    return dict(row)


def build(db: BankDB) -> MCPServer:
    server = new_server(
        "account-mcp",
        version="1.0.0",
        instructions="TrustUsBank account information: balances and customer profiles (contains PII).",
    )

    @server.tool()
    def get_balance(customer_id: CustomerId) -> Balance:
        """Return the current cleared balance of a customer's account, with its currency."""
        row = _customer(db, customer_id)
        return Balance(customer_id=customer_id, balance=float(row["balance"]), currency=row["currency"])

    @server.tool()
    def get_profile(customer_id: CustomerId) -> Profile:
        """Return the customer's full profile: name, email, phone, address, date of birth,
        National Insurance number and KYC status. This is PII: mask it before showing it to anyone."""
        row = _customer(db, customer_id)
        return Profile(**{k: row[k] for k in Profile.model_fields})

    return server
