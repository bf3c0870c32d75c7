"""The rules in order, and failing closed: an error while deciding is a logged reject."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.mesh.guard.client import Guard, guard_at, text_result, tool

CONVERT = tool("convert_currency", "Convert.", amount="number", memo="string")
PROFILE = {"name": "Alice Smith", "email": "alice@example.com"}


async def test_pinned_schema_decides_before_data_flow(guard: Guard) -> None:
    await guard.listed("currency-converter", [CONVERT])
    await guard.result("account-mcp", "get_profile", text_result(json.dumps(PROFILE), structured=PROFILE))
    answer = await guard.request(
        "currency-converter", "convert_currency", {"amount": 5, "customer_profile": PROFILE}
    )
    assert answer["rule"] == "pinned-schema"
    answer = await guard.request(
        "currency-converter", "convert_currency", {"amount": 5, "memo": "Alice Smith"}
    )
    assert answer["rule"] == "data-flow"
    assert [r["rule"] for r in guard.evidence()] == ["pinned-schema", "data-flow"]


async def test_an_error_while_deciding_is_a_logged_reject(tmp_path: Path) -> None:
    async with guard_at(tmp_path) as guard:
        await guard.listed("currency-converter", [CONVERT])
        with sqlite3.connect(tmp_path / "pins.sqlite3") as db:
            db.execute("DROP TABLE pins")  # the store breaks under the running guard
        for answer in (
            await guard.request("currency-converter", "convert_currency", {"amount": 5}),
            await guard.listed("currency-converter", [CONVERT]),
        ):
            assert (answer["action"], answer["rule"]) == ("reject", "internal-error")
            assert "OperationalError" in answer["reason"]
        records = guard.evidence()
        assert [(r["rule"], r["action"], r["tool"]) for r in records] == [
            ("internal-error", "reject", "convert_currency"),
            ("internal-error", "reject", None),
        ]
        assert "no such table: pins" in records[0]["error"]
        labels = {"rule": "internal-error", "action": "reject", "backend": "currency-converter"}
        assert await guard.metric("trustusbank_mcp_guard_decisions_total", **labels) == 2
