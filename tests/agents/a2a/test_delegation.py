"""One agent calling another over A2A: the nested chain, one trace, and the callee's AccessPolicy."""

from __future__ import annotations

import json
from typing import Any

from a2a.types import a2a_pb2 as a2a

from tests.agents.a2a.conftest import BankTools
from tests.agents.a2a.support import (
    FailingModel,
    PlanModel,
    agent_spec,
    answer,
    ask,
    call,
    chain,
    mcp,
    offered,
    reply_text,
    results,
    running_agent,
    spans_named,
    sub_agent,
)
from trustusbank.agents.model.types import ModelReply, ModelRequest
from trustusbank.manifests.kagent.spec import AccessRule, AgentSpec

TRIAGE = "cluster.local/ns/trustusbank-bank-agents/sa/triage-bot"


def fraud_checker(request: ModelRequest) -> ModelReply:
    done = results(request)
    if "list_recent" not in done:
        return call("list_recent", customer_id="12345", days=90)
    foreign = [t for t in json.loads(done["list_recent"].text)["transactions"] if t["country"] != "GB"]
    return answer(f"{len(foreign)} foreign transactions, largest {min(t['amount'] for t in foreign)}")


def delegating(request: ModelRequest) -> ModelReply:
    done = results(request)
    if "fraud_bot" not in done:
        assert "fraud_bot" in offered(request)
        return call("fraud_bot", request="check customer 12345 for fraud")
    return answer(f"fraud-bot says: {done['fraud_bot'].text}")


def fraud_bot_spec(bank: BankTools, **changes: Any) -> AgentSpec:
    return agent_spec(
        "fraud-bot",
        mcp_servers=(mcp("transaction-mcp", bank.transactions.url, "list_recent"),),
        **changes,
    )


async def test_delegation_nests_the_chain_and_the_trace(bank: BankTools) -> None:
    with running_agent(fraud_bot_spec(bank), PlanModel(fraud_checker)) as child:
        parent_spec = agent_spec(
            sub_agents=(sub_agent("fraud-bot", child.url, "Checks customers for fraud."),)
        )
        parent_model = PlanModel(delegating)
        with running_agent(parent_spec, parent_model) as parent:
            task, _ = await ask(parent.url, "is 12345 being defrauded?")
            parent_spans = parent.finished()
        child_spans = child.finished()

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    (tool,) = parent_model.requests[0].tools
    assert tool.description == "Checks customers for fraud."
    assert tool.input_schema["required"] == ["request"]
    (step,) = chain(task)["steps"]
    assert step["type"] == "agent"
    assert step["server"] == "trustusbank-bank-agents/fraud-bot"
    assert step["name"] == "fraud_bot"
    assert step["arguments"] == {"request": "check customer 12345 for fraud"}
    assert step["url"] == f"{child.url}/"
    assert not step["is_error"]
    (nested,) = step["steps"]
    assert (nested["type"], nested["server"], nested["name"]) == ("tool", "transaction-mcp", "list_recent")
    assert reply_text(task) == f"fraud-bot says: {step['result']}"
    assert step["result"].startswith("1 foreign transactions, largest -1499")  # the seeded RU payment

    (delegation,) = spans_named(parent_spans, "execute_tool ")
    assert delegation.attributes is not None
    assert delegation.attributes["gen_ai.tool.type"] == "agent"
    assert delegation.attributes["mcp.server.name"] == "trustusbank-bank-agents/fraud-bot"
    (child_run,) = spans_named(child_spans, "invoke_agent ")
    assert child_run.name == "invoke_agent fraud-bot"
    assert child_run.context.trace_id == delegation.context.trace_id
    assert child_run.parent is not None
    assert child_run.parent.span_id == delegation.context.span_id
    # the conversation continues in the sub-agent under the same context id
    assert child_run.attributes is not None
    assert child_run.attributes["gen_ai.conversation.id"] == task.context_id


async def test_callee_accesspolicy_refusal_is_a_tool_error_for_the_caller(bank: BankTools) -> None:
    only_triage = AccessRule(
        policy="trustusbank-bank-agents/fraud-bot-callers", action="ALLOW", principals=(TRIAGE,)
    )
    support = "cluster.local/ns/trustusbank-bank-agents/sa/support-bot"
    child_spec = fraud_bot_spec(bank, access=(only_triage,), access_enforced=True)
    with running_agent(child_spec, PlanModel(fraud_checker), caller_of=lambda _: support) as child:
        parent_spec = agent_spec(sub_agents=(sub_agent("fraud-bot", child.url),))
        with running_agent(parent_spec, PlanModel(delegating)) as parent:
            task, _ = await ask(parent.url, "is 12345 being defrauded?")

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    (step,) = chain(task)["steps"]
    assert step["is_error"]
    assert "HTTP 403" in step["result"]
    assert (
        "AccessPolicy trustusbank-bank-agents/fraud-bot-callers denies "
        f"{support} calling trustusbank-bank-agents/fraud-bot" in step["result"]
    )
    assert step["steps"] == []


async def test_failed_sub_agent_is_a_tool_error_for_the_caller() -> None:
    with running_agent(agent_spec("fraud-bot"), FailingModel("quota exhausted")) as child:
        parent_spec = agent_spec(sub_agents=(sub_agent("fraud-bot", child.url),))
        with running_agent(parent_spec, PlanModel(delegating)) as parent:
            task, _ = await ask(parent.url, "is 12345 being defrauded?")

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    (step,) = chain(task)["steps"]
    assert step["is_error"]
    assert (
        step["result"]
        == "agent trustusbank-bank-agents/fraud-bot ended failed: The model failed: quota exhausted"
    )
    assert reply_text(task) == f"fraud-bot says: {step['result']}"
