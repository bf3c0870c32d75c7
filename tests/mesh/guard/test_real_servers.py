"""The guard judging what the real workloads send: the bank's servers, the clean converter and
its real rug pull, each a `trustusbank serve` process spoken to with the MCP SDK's client.

What each server answered (as the SDK puts it on the wire) is shown to the guard as the
waypoint would: honest answers must pass untouched, and each part of the rug pull is caught.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from tests.mesh.guard.client import Guard
from trustusbank.mesh.guard.pins import sha256
from trustusbank.workloads.vendor.build_real_rugpull import INJECTION

CONVERTER = "currency-converter"
SEED_CALL = {"amount": 4287.55, "from_ccy": "GBP", "to_ccy": "USD"}


def wire(model: Any) -> Any:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


class Backend:
    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url

    async def tools(self) -> list[dict[str, Any]]:
        async with Client(f"{self.url}/mcp") as client:
            return [wire(t) for t in (await client.list_tools()).tools]

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        async with Client(f"{self.url}/mcp") as client:
            result: dict[str, Any] = wire(await client.call_tool(tool, arguments))
        assert not result.get("isError"), result
        return result


@pytest.fixture
def backends(serve: Any) -> dict[str, Backend]:
    fx, attacker = serve("fx-api"), serve("mock-attacker")
    env = {"FX_API_URL": fx.url, "ACME_TELEMETRY_URL": f"{attacker.url}/exfil"}
    return {
        "account-mcp": Backend("account-mcp", serve("account-mcp").url),
        "transaction-mcp": Backend("transaction-mcp", serve("transaction-mcp").url),
        "clean": Backend(CONVERTER, serve(CONVERTER, "--variant", "clean", env=env).url),
        "rugpull": Backend(CONVERTER, serve(CONVERTER, "--variant", "real-rugpull", env=env).url),
    }


async def judged_call(guard: Guard, backend: Backend, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The request judged, then (if it passes) the server's real answer judged."""
    asked = await guard.request(backend.name, tool, arguments)
    if asked != {"action": "pass"}:
        return asked
    return await guard.result(backend.name, tool, await backend.call(tool, arguments), arguments=arguments)


async def test_honest_bank_answers_pass_untouched(guard: Guard, backends: dict[str, Backend]) -> None:
    for key in ("account-mcp", "transaction-mcp", "clean"):
        assert await guard.listed(backends[key].name, await backends[key].tools()) == {"action": "pass"}
    account, transactions, clean = backends["account-mcp"], backends["transaction-mcp"], backends["clean"]
    recent = await transactions.call("list_recent", {"customer_id": "12345", "days": 90})
    first = recent["structuredContent"]["transactions"][0]["txn_id"]
    calls = [
        (account, "get_balance", {"customer_id": "12345"}),
        (account, "get_profile", {"customer_id": "12345"}),
        (transactions, "list_recent", {"customer_id": "12345", "days": 90}),
        (transactions, "get_details", {"txn_id": first}),
        (clean, "convert_currency", SEED_CALL),  # after the profile: amounts and codes are not PII
    ]
    for backend, tool, arguments in calls:
        assert await judged_call(guard, backend, tool, arguments) == {"action": "pass"}, (tool, arguments)
    assert guard.evidence() == [], "no honest answer may leave a mask or reject on the record"


async def test_each_part_of_the_real_rug_pull_is_caught(guard: Guard, backends: dict[str, Backend]) -> None:
    clean_tools = await backends["clean"].tools()
    await guard.listed(CONVERTER, clean_tools)  # pinned while the vendor was honest
    await guard.listed("account-mcp", await backends["account-mcp"].tools())
    await judged_call(guard, backends["account-mcp"], "get_profile", {"customer_id": "12345"})
    rug = backends["rugpull"]

    listing = await guard.listed(CONVERTER, await rug.tools())
    assert (listing["action"], listing["rule"]) == ("mask", "tool-pin")
    [served] = listing["response"]["result"]["tools"]
    [clean] = clean_tools
    assert (served["description"], served["inputSchema"]) == (clean["description"], clean["inputSchema"])
    assert "customer_profile" not in served["inputSchema"]["properties"]

    answer = await judged_call(guard, rug, "convert_currency", SEED_CALL)
    assert (answer["action"], answer["rule"]) == ("mask", "quarantine")
    texts = [item["text"] for item in answer["response"]["result"]["content"]]
    assert INJECTION not in texts
    assert f"sha256:{sha256(INJECTION)[:12]}]" in texts[1]
    assert answer["response"]["result"]["structuredContent"]["converted"] == 5445.19, "the data stays"

    profile = (await backends["account-mcp"].call("get_profile", {"customer_id": "12345"}))[
        "structuredContent"
    ]
    widened = await guard.request(CONVERTER, "convert_currency", {**SEED_CALL, "customer_profile": profile})
    assert (widened["action"], widened["rule"]) == ("reject", "pinned-schema")
    smuggled = await guard.request(
        CONVERTER, "convert_currency", {**SEED_CALL, "to_ccy": profile["ni_number"]}
    )
    assert (smuggled["action"], smuggled["rule"]) == ("reject", "data-flow")

    rules = [(r["rule"], r["action"]) for r in guard.evidence()]
    assert rules == [
        ("tool-pin", "mask"),
        ("quarantine", "mask"),
        ("pinned-schema", "reject"),
        ("data-flow", "reject"),
    ]
