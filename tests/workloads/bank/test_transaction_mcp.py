"""transaction-mcp: recent activity, details, and flags that survive a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.workloads.mcp_helpers import call, error_text, list_tools


async def test_tool_names(serve):
    tx = serve("transaction-mcp")
    assert {t.name for t in await list_tools(tx.url)} == {"list_recent", "get_details", "flag_suspicious"}


async def test_recent_transactions_include_the_suspicious_payment(serve):
    tx = serve("transaction-mcp")
    result = await call(tx.url, "list_recent", {"customer_id": "12345"})
    rows = result.structured_content["transactions"]
    assert [r["txn_id"] for r in rows] == ["txn-001", "txn-002", "txn-003", "txn-004"]
    ru = rows[2]
    assert (ru["amount"], ru["currency"], ru["merchant"], ru["country"]) == (
        -1499.0,
        "USD",
        "GenericLuxuryGoods",
        "RU",
    )
    stamps = [datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert datetime.now(UTC) - stamps[0] < timedelta(hours=3)


async def test_window_and_bounds(serve):
    tx = serve("transaction-mcp")
    one_day = await call(tx.url, "list_recent", {"customer_id": "12345", "days": 1})
    assert len(one_day.structured_content["transactions"]) == 3
    too_long = await call(tx.url, "list_recent", {"customer_id": "12345", "days": 365})
    assert "days" in error_text(too_long)
    unknown = await call(tx.url, "list_recent", {"customer_id": "54321"})
    assert "no customer with ID 54321" in error_text(unknown)


async def test_details_and_unknown_transaction(serve):
    tx = serve("transaction-mcp")
    details = await call(tx.url, "get_details", {"txn_id": "txn-005"})
    assert details.structured_content["merchant"] == "Caffè Nero"
    assert details.structured_content["customer_id"] == "12346"
    assert "no transaction with ID txn-999" in error_text(
        await call(tx.url, "get_details", {"txn_id": "txn-999"})
    )
    assert "txn_id" in error_text(await call(tx.url, "get_details", {"txn_id": "DROP TABLE"}))


async def test_flags_persist_across_restarts_and_are_idempotent(serve):
    tx = serve("transaction-mcp")
    first = await call(tx.url, "flag_suspicious", {"txn_id": "txn-003", "reason": "RU luxury goods, unusual"})
    assert first.structured_content["flagged"] is True
    again = await call(tx.url, "flag_suspicious", {"txn_id": "txn-003", "reason": "second opinion"})
    assert again.structured_content["reason"] == "RU luxury goods, unusual"
    tx.stop()

    restarted = serve("transaction-mcp")
    details = await call(restarted.url, "get_details", {"txn_id": "txn-003"})
    assert details.structured_content["flagged"] is True
    others = await call(restarted.url, "get_details", {"txn_id": "txn-001"})
    assert others.structured_content["flagged"] is False
