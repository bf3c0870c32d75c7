"""ticket-mcp: DORA incident tickets and escalations, persisted."""

from __future__ import annotations

import re

import pytest

from tests.workloads.mcp_helpers import call, error_text, list_tools


async def test_tool_schemas_carry_the_enums(serve):
    ticket = serve("ticket-mcp")
    tools = {t.name: t for t in await list_tools(ticket.url)}
    assert tools["create_ticket"].input_schema["properties"]["severity"]["enum"] == [
        "low",
        "medium",
        "high",
        "critical",
    ]
    assert tools["notify_human"].input_schema["properties"]["channel"]["enum"] == ["slack", "email", "pager"]


async def test_ticket_lifecycle_survives_restart(serve):
    ticket = serve("ticket-mcp")
    created = await call(
        ticket.url,
        "create_ticket",
        {"customer_id": "12345", "summary": "Exfil attempt", "severity": "critical"},
    )
    body = created.structured_content
    assert re.fullmatch(r"TICK-[0-9A-F]{8}", body["ticket_id"])
    assert (body["severity"], body["status"]) == ("critical", "open")
    first = await call(ticket.url, "notify_human", {"ticket_id": body["ticket_id"], "channel": "pager"})
    assert first.structured_content["notifications_sent"] == 1
    ticket.stop()

    restarted = serve("ticket-mcp")
    second = await call(restarted.url, "notify_human", {"ticket_id": body["ticket_id"]})
    assert second.structured_content["channel"] == "slack"
    assert second.structured_content["notifications_sent"] == 2


async def test_default_severity_is_medium(serve):
    ticket = serve("ticket-mcp")
    created = await call(ticket.url, "create_ticket", {"customer_id": "12346", "summary": "Card lost"})
    assert created.structured_content["severity"] == "medium"


@pytest.mark.parametrize(
    ("tool", "arguments", "complaint"),
    [
        ("create_ticket", {"customer_id": "12345", "summary": "x", "severity": "urgent"}, "severity"),
        ("create_ticket", {"customer_id": "12345", "summary": ""}, "summary"),
        ("notify_human", {"ticket_id": "TICK-00000000", "channel": "fax"}, "channel"),
    ],
)
async def test_bad_arguments(serve, tool, arguments, complaint):
    ticket = serve("ticket-mcp")
    assert complaint in error_text(await call(ticket.url, tool, arguments))


async def test_unknown_ticket(serve):
    ticket = serve("ticket-mcp")
    result = await call(ticket.url, "notify_human", {"ticket_id": "TICK-DEADBEEF"})
    assert "no ticket with ID TICK-DEADBEEF" in error_text(result)
