"""`trustusbank ask`: through the chatbot's proxy to a real A2A agent, reply first, then the chain."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.workloads.chatbot.helpers import CHAIN, DENY_MESSAGE, NS, Stack, closed_port_url, run_stack
from trustusbank.cli.app import app


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    yield from run_stack()


def ask(stack: Stack, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["ask", *args, "--chatbot", stack.chatbot], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_prints_the_reply_then_the_chain(stack: Stack) -> None:
    code, out, err = ask(stack, "what is my balance?")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "turn 1: you said what is my balance?"
    balance = next(line for line in lines if "get_balance" in line)
    assert "@ account-mcp" in balance
    assert '{"customer_id":"12345"}' in balance
    assert "error" not in balance
    handoff = next(line for line in lines if "fraud-bot" in line and "agent" in line)
    flagged = next(line for line in lines if "flag_suspicious" in line)
    assert "✗ error" in flagged
    assert flagged.index("flag_suspicious") > handoff.index("agent fraud-bot"), "sub-agent steps are nested"
    # tool results are data: markup in them is printed, not interpreted
    assert "[bold]x[/bold]" in out
    assert "--context-id" in lines[-1]


def test_json_shape_and_continuing_a_conversation(stack: Stack) -> None:
    code, out, _ = ask(stack, "hello", "--json")
    assert code == 0
    first = json.loads(out)
    assert set(first) == {"reply", "tool_calls", "task_id", "context_id", "state"}
    assert first["reply"] == "turn 1: you said hello"
    assert first["state"] == "completed"
    assert first["tool_calls"] == CHAIN
    assert first["task_id"]

    code, out, _ = ask(stack, "again", "--json", "--context-id", first["context_id"])
    second = json.loads(out)
    assert code == 0
    assert second["reply"] == "turn 2: you said again"
    assert second["context_id"] == first["context_id"]
    assert second["task_id"] != first["task_id"]


def test_unreachable_chatbot_says_how_to_fix_it() -> None:
    result = CliRunner().invoke(app, ["ask", "hi", "--chatbot", closed_port_url().rstrip("/")])
    assert result.exit_code == 1
    assert "cannot reach the chatbot" in result.stderr
    assert "is `trustusbank up` running?" in result.stderr
    assert result.stdout == ""


def test_denied_agent_prints_the_access_policy_message(stack: Stack) -> None:
    code, out, err = ask(stack, "hi", "--agent", f"{NS}/fraud-bot")
    assert code == 1
    assert "403" in err
    assert DENY_MESSAGE in err
    assert out == ""


def test_agent_down_behind_the_chatbot(stack: Stack) -> None:
    code, _, err = ask(stack, "hi", "--agent", f"{NS}/gone-bot")
    assert code == 1
    assert "502" in err
    assert f"{NS}/gone-bot" in err
    assert "trustusbank up" not in err, "the chatbot is up; the agent is what is missing"


def test_failed_task_prints_its_status_message(stack: Stack) -> None:
    code, out, err = ask(stack, "fail please", "--json")
    assert code == 1
    assert json.loads(out)["state"] == "failed"
    assert "the task ended failed: the card service is unavailable" in err


def test_bad_agent_reference_is_a_usage_error(stack: Stack) -> None:
    code, _, err = ask(stack, "hi", "--agent", "support-bot")
    assert code == 2
    assert "<namespace>/<name>" in err


def test_the_chatbot_refuses_what_is_not_one_of_its_agents(stack: Stack) -> None:
    code, out, err = ask(stack, "hi", "--agent", "trustusbank-bank-mcp/account-mcp")
    assert code == 1
    assert "403" in err
    assert "the chatbot reaches only the agents it is configured for" in err
    assert out == ""
