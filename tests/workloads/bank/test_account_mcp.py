"""account-mcp over real HTTP with the SDK client."""

from __future__ import annotations

import httpx
import pytest

from tests.workloads.mcp_helpers import MODES, call, error_text, list_tools

ALICE = {
    "customer_id": "12345",
    "name": "Alice Smith",
    "email": "alice@example.com",
    "phone": "+44 7700 900100",
    "address": "42 King Street, Manchester M2 7HE, United Kingdom",
    "date_of_birth": "1987-03-14",
    "ni_number": "QQ 12 34 56 C",
    "kyc_status": "verified",
}


@pytest.fixture
def account(serve):
    return serve("account-mcp")


@pytest.mark.parametrize("mode", MODES)
async def test_tools_are_described_and_typed(account, mode):
    tools = {t.name: t for t in await list_tools(account.url, mode)}
    assert set(tools) == {"get_balance", "get_profile"}
    for tool in tools.values():
        assert len(tool.description) > 30
        assert tool.output_schema["type"] == "object"
        assert tool.input_schema["required"] == ["customer_id"]
    assert set(tools["get_profile"].output_schema["properties"]) == set(ALICE)


@pytest.mark.parametrize("mode", MODES)
async def test_balance_of_the_seed_customer(account, mode):
    result = await call(account.url, "get_balance", {"customer_id": "12345"}, mode)
    assert not result.is_error
    assert result.structured_content == {"customer_id": "12345", "balance": 4287.55, "currency": "GBP"}


async def test_other_customers_balances(account):
    balances = {}
    for cid in ("12346", "12347"):
        balances[cid] = (await call(account.url, "get_balance", {"customer_id": cid})).structured_content[
            "balance"
        ]
    assert balances == {"12346": 102.33, "12347": 18920.00}


async def test_full_profile_is_returned(account):
    result = await call(account.url, "get_profile", {"customer_id": "12345"})
    assert result.structured_content == ALICE
    marco = await call(account.url, "get_profile", {"customer_id": "12347"})
    assert marco.structured_content["kyc_status"] == "under_review"


async def test_unknown_customer_is_a_tool_error(account):
    result = await call(account.url, "get_profile", {"customer_id": "99999"})
    assert "no customer with ID 99999" in error_text(result)


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [({"customer_id": "12"}, "customer_id"), ({}, "customer_id"), ({"customer_id": 12345}, "customer_id")],
)
async def test_malformed_arguments_are_schema_errors(account, arguments, complaint):
    result = await call(account.url, "get_balance", arguments)
    text = error_text(result)
    assert "validation error" in text
    assert complaint in text


def _discover(url: str, host: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {
        "Host": host,
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/list",
    }
    return httpx.post(f"{url}/mcp", json=body, headers=headers).status_code


def test_accepts_its_service_names_and_the_waypoint_but_no_other_host(account):
    for host in (
        "account-mcp.trustusbank-bank-mcp.svc.cluster.local:8000",
        "account-mcp.trustusbank-bank-mcp:8000",
        "trustusbank-agentgw.trustusbank-platform.svc.cluster.local:8080",
    ):
        assert _discover(account.url, host) != 421, host
    assert _discover(account.url, "evil.example.com") == 421
