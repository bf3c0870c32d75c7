"""The demo's identities and workloads, as the authz tests name them."""

from __future__ import annotations

from trustusbank.mesh.authz import Workload
from trustusbank.mesh.identity.spiffe import SpiffeId

SUPPORT_BOT = SpiffeId("cluster.local", "trustusbank-bank-agents", "support-bot")
FRAUD_BOT = SpiffeId("cluster.local", "trustusbank-bank-agents", "fraud-bot")
CONVERTER = SpiffeId("cluster.local", "trustusbank-bank-vendors", "currency-converter")
FX_API = SpiffeId("cluster.local", "external-fx", "fx-api")

ACCOUNT_MCP = Workload("account-mcp", "trustusbank-bank-mcp", {"app": "account-mcp"})
ATTACKER = Workload("mock-attacker", "external-attacker", {"app": "mock-attacker"})
