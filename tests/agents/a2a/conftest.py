"""Real MCP workloads for the runtime tests, served once per module on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.agents.a2a.support import Gate, Served
from trustusbank.workloads.entrypoints import WORKLOADS


@dataclass
class BankTools:
    account: Served
    account_gate: Gate
    transactions: Served
    converter: Served


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BankTools]:
    data = tmp_path_factory.mktemp("bank")
    gate = Gate(WORKLOADS["account-mcp"].app(db=data / "account.sqlite3"))
    servers = [
        Served(lambda _: gate),
        Served(lambda _: WORKLOADS["transaction-mcp"].app(db=data / "transactions.sqlite3")),
        Served(lambda _: WORKLOADS["currency-converter"].app(variant="clean", db=data / "fx.sqlite3")),
    ]
    for server in servers:
        server.start()
    try:
        yield BankTools(servers[0], gate, servers[1], servers[2])
    finally:
        for server in servers:
            server.stop()
