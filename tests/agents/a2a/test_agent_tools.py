"""An agent answering through real MCP servers: the tool-call chain, the spans, and the bounds."""

from __future__ import annotations

import json

from a2a.types import a2a_pb2 as a2a
from opentelemetry.trace import SpanKind, StatusCode

from tests.agents.a2a.conftest import BankTools
from tests.agents.a2a.support import (
    FailingModel,
    PlanModel,
    StuckModel,
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
    status_text,
)
from trustusbank.agents.model.types import ModelReply, ModelRequest
from trustusbank.manifests.kagent.spec import AgentSpec


def support_bot(bank: BankTools, **changes: object) -> AgentSpec:
    return agent_spec(
        mcp_servers=(
            mcp("account-mcp", bank.account.url, "get_balance", "get_profile"),
            mcp("transaction-mcp", bank.transactions.url, "list_recent"),
            mcp("currency-converter", bank.converter.url),
        ),
        **changes,
    )


def balance_in_usd(request: ModelRequest) -> ModelReply:
    """get_balance, then convert_currency on what it returned, then get_profile for the name."""
    done = results(request)
    customer = request.messages[-1].text.split()[-1] if request.messages[-1].role == "user" else None
    if "get_balance" not in done:
        assert customer is not None
        return call("get_balance", customer_id=customer)
    balance = json.loads(done["get_balance"].text)
    if "convert_currency" not in done:
        return call("convert_currency", amount=balance["balance"], from_ccy=balance["currency"], to_ccy="USD")
    if "get_profile" not in done:
        return call("get_profile", customer_id=balance["customer_id"])
    converted = json.loads(done["convert_currency"].text)["converted"]
    name = json.loads(done["get_profile"].text)["name"]
    return answer(f"{name} has {converted:.2f} USD")


async def test_answer_from_three_real_tool_calls_with_chain_and_spans(bank: BankTools) -> None:
    model = PlanModel(balance_in_usd)
    with running_agent(support_bot(bank), model) as agent:
        task, _ = await ask(agent.url, "balance in dollars for customer 12345")
        spans = agent.finished()

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    # 4287.55 GBP at the bundled 1.27 reference rate, and the seeded customer's name
    assert reply_text(task) == "Alice Smith has 5445.19 USD"
    assert status_text(task) == reply_text(task)
    offered_tools = offered(model.requests[0])
    assert offered_tools == {"get_balance", "get_profile", "list_recent", "convert_currency"}

    steps = chain(task)["steps"]
    assert [(s["type"], s["server"], s["name"]) for s in steps] == [
        ("tool", "account-mcp", "get_balance"),
        ("tool", "currency-converter", "convert_currency"),
        ("tool", "account-mcp", "get_profile"),
    ]
    assert steps[1]["arguments"] == {"amount": 4287.55, "from_ccy": "GBP", "to_ccy": "USD"}
    assert json.loads(steps[1]["result"])["converted"] == 5445.19
    assert steps[0]["url"] == f"{bank.account.url}/mcp"
    assert not any(s["is_error"] for s in steps)
    assert all(s["duration_ms"] > 0 for s in steps)
    assert chain(task)["stop_reason"] is None

    (invoke,) = spans_named(spans, "invoke_agent ")
    assert invoke.name == "invoke_agent support-bot"
    assert invoke.kind == SpanKind.SERVER
    assert invoke.attributes is not None
    assert invoke.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert invoke.attributes["gen_ai.agent.name"] == "support-bot"
    assert invoke.attributes["gen_ai.conversation.id"] == task.context_id
    assert invoke.attributes["gen_ai.provider.name"] == "test-provider"
    assert invoke.attributes["gen_ai.system"] == "test-provider"
    # The exchange itself, in the conventions' message shape: the operator's console reads it.
    assert json.loads(str(invoke.attributes["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "balance in dollars for customer 12345"}]}
    ]
    assert json.loads(str(invoke.attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Alice Smith has 5445.19 USD"}],
            "finish_reason": "stop",
        }
    ]

    chats = spans_named(spans, "chat ")
    assert len(chats) == len(model.requests) == 4
    for chat in chats:
        assert chat.name == "chat plan-model-1"
        assert chat.parent is not None
        assert chat.parent.span_id == invoke.context.span_id
        assert chat.attributes is not None
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == "plan-model-1"
        assert chat.attributes["gen_ai.response.model"] == "plan-model-1-0001"
        assert str(chat.attributes["gen_ai.response.id"]).startswith("resp-")
        assert chat.attributes["gen_ai.provider.name"] == "test-provider"
    assert [c.attributes["gen_ai.response.finish_reasons"] for c in chats if c.attributes] == [
        ("tool_use",),
        ("tool_use",),
        ("tool_use",),
        ("end_turn",),
    ]
    assert sum(int(c.attributes["gen_ai.usage.input_tokens"]) for c in chats if c.attributes) == 50

    tools = spans_named(spans, "execute_tool ")
    assert [t.name for t in tools] == [
        "execute_tool get_balance",
        "execute_tool convert_currency",
        "execute_tool get_profile",
    ]
    convert = tools[1].attributes
    assert convert is not None
    assert convert["gen_ai.operation.name"] == "execute_tool"
    assert convert["gen_ai.tool.name"] == "convert_currency"
    assert convert["gen_ai.tool.type"] == "extension"
    assert convert["gen_ai.tool.call.id"] == steps[1]["call_id"]
    assert json.loads(str(convert["gen_ai.tool.call.arguments"])) == steps[1]["arguments"]
    assert convert["gen_ai.tool.call.result"] == steps[1]["result"]
    assert convert["mcp.server.name"] == "currency-converter"
    assert convert["url.full"] == f"{bank.converter.url}/mcp"
    assert convert["trustusbank.tool.is_error"] is False
    assert all(t.parent is not None and t.parent.span_id == invoke.context.span_id for t in tools)
    assert len({s.context.trace_id for s in spans}) == 1


async def test_trace_context_flows_in_from_the_caller_and_out_to_the_mcp_server(bank: BankTools) -> None:
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{caller_trace}-00f067aa0ba902b7-01"
    bank.account_gate.headers.clear()
    model = PlanModel(lambda r: call("get_balance", customer_id="12346") if not results(r) else answer("ok"))
    with running_agent(support_bot(bank), model) as agent:
        task, _ = await ask(agent.url, "balance of 12346", headers={"traceparent": traceparent})
        spans = agent.finished()

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    (invoke,) = spans_named(spans, "invoke_agent ")
    assert format(invoke.context.trace_id, "032x") == caller_trace
    assert invoke.parent is not None
    assert format(invoke.parent.span_id, "016x") == "00f067aa0ba902b7"
    (tool,) = spans_named(spans, "execute_tool ")
    sent = bank.account_gate.headers
    assert sent
    assert all(h["traceparent"].split("-")[1] == caller_trace for h in sent)
    # the listing belongs to the run, the call to its execute_tool span
    calls = [h["traceparent"].split("-")[2] for h in sent if h.get("mcp-method") == "tools/call"]
    lists = [h["traceparent"].split("-")[2] for h in sent if h.get("mcp-method") == "tools/list"]
    assert calls
    assert set(calls) == {format(tool.context.span_id, "016x")}
    assert lists
    assert lists[0] == format(invoke.context.span_id, "016x")
    assert set(lists[1:]) <= {format(tool.context.span_id, "016x")}  # the SDK may re-list while calling


async def test_streaming_reports_each_step_then_the_answer(bank: BankTools) -> None:
    model = PlanModel(balance_in_usd)
    with running_agent(support_bot(bank), model) as agent:
        task, events = await ask(agent.url, "balance in dollars for customer 12347", streaming=True)

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    notes = [
        status_text_of(e.status_update.status)
        for e in events
        if e.HasField("status_update") and e.status_update.status.state == a2a.TaskState.TASK_STATE_WORKING
    ]
    assert "Calling get_balance on account-mcp" in notes
    assert "Calling convert_currency on currency-converter" in notes
    artifacts = [e.artifact_update.artifact.name for e in events if e.HasField("artifact_update")]
    assert artifacts == ["reply", "tool-calls"]
    final = events[-1]
    assert final.HasField("status_update")
    assert final.status_update.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    assert status_text_of(final.status_update.status) == reply_text(task)
    assert reply_text(task).endswith(" USD")


def status_text_of(status: a2a.TaskStatus) -> str:
    return " ".join(p.text for p in status.message.parts if p.HasField("text"))


async def test_tool_errors_go_back_to_the_model(bank: BankTools) -> None:
    """A tool's own error, a gateway's 403 and an unknown tool name are results the model reads."""
    bank.account_gate.deny_tools = {"get_profile"}

    def plan(request: ModelRequest) -> ModelReply:
        done = results(request)
        for name, args in (
            ("get_balance", {"customer_id": "99999"}),
            ("get_profile", {"customer_id": "12345"}),
            ("wire_money", {"to": "attacker"}),
        ):
            if name not in done:
                return call(name, **args)
        return answer(" | ".join(f"{n}:{m.is_error}" for n, m in done.items()))

    model = PlanModel(plan)
    try:
        with running_agent(support_bot(bank), model) as agent:
            task, _ = await ask(agent.url, "try things")
            spans = agent.finished()
    finally:
        bank.account_gate.deny_tools = set()

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    assert reply_text(task) == "get_balance:True | get_profile:True | wire_money:True"
    unknown_customer, refused, unknown_tool = chain(task)["steps"]
    assert unknown_customer["is_error"]
    assert "no customer with ID 99999" in unknown_customer["result"]
    assert refused["is_error"]
    assert "tools/call get_profile is not allowed for this caller" in refused["result"]
    assert "HTTP 403" in refused["result"]
    assert unknown_tool["is_error"]
    assert unknown_tool["server"] == ""
    assert "no tool named 'wire_money'" in unknown_tool["result"]
    final_request = model.requests[-1]
    assert [m.is_error for m in final_request.messages if m.role == "tool"] == [True, True, True]
    by_tool = {s.name: s for s in spans_named(spans, "execute_tool ")}
    profile = by_tool["execute_tool get_profile"]
    assert profile.attributes is not None
    assert profile.attributes["trustusbank.tool.is_error"] is True
    assert profile.status.status_code == StatusCode.ERROR


async def test_max_steps_stops_with_an_apology(bank: BankTools) -> None:
    model = PlanModel(lambda _: call("list_recent", customer_id="12345"))
    with running_agent(support_bot(bank, max_steps=3), model) as agent:
        task, _ = await ask(agent.url, "loop forever")
        spans = agent.finished()

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    assert len(model.requests) == 3
    data = chain(task)
    assert data["stop_reason"] == "max_steps"
    # the third reply asked for a tool, but no model call was left to read its result
    assert [s["name"] for s in data["steps"]] == ["list_recent", "list_recent"]
    assert reply_text(task).startswith("I'm sorry")
    assert "limit of 3 model steps" in reply_text(task)
    (invoke,) = spans_named(spans, "invoke_agent ")
    assert invoke.attributes is not None
    assert invoke.attributes["trustusbank.agent.stop_reason"] == "max_steps"


async def test_model_that_never_answers_is_cut_off_by_the_step_timeout(bank: BankTools) -> None:
    model = StuckModel()
    with running_agent(support_bot(bank, step_timeout_seconds=0.2), model) as agent:
        task, _ = await ask(agent.url, "hello?")

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    assert chain(task)["stop_reason"] == "model_timeout"
    assert "did not answer within 0.2 seconds" in reply_text(task)


async def test_tool_that_never_answers_is_cut_off_by_the_step_timeout(bank: BankTools) -> None:
    bank.account_gate.stall_tools = {"get_profile"}
    bank.account_gate.release.clear()
    model = PlanModel(
        lambda r: call("get_profile", customer_id="12345") if not results(r) else answer("done")
    )
    try:
        with running_agent(support_bot(bank, step_timeout_seconds=0.3), model) as agent:
            task, _ = await ask(agent.url, "profile of 12345")
    finally:
        bank.account_gate.release.set()
        bank.account_gate.stall_tools = set()

    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    data = chain(task)
    assert data["stop_reason"] == "tool_timeout"
    (step,) = data["steps"]
    assert step["is_error"]
    assert step["result"] == "the tool get_profile did not answer within 0.3 seconds"
    assert len(model.requests) == 1
    assert reply_text(task) == f"I'm sorry, I could not finish this request: {step['result']}."


async def test_model_error_fails_the_task(bank: BankTools) -> None:
    model = FailingModel("provider answered HTTP 529: overloaded")
    with running_agent(support_bot(bank), model) as agent:
        task, _ = await ask(agent.url, "anything")
        spans = agent.finished()

    assert task.status.state == a2a.TaskState.TASK_STATE_FAILED
    assert status_text(task) == "The model failed: provider answered HTTP 529: overloaded"
    assert not task.artifacts
    (chat,) = spans_named(spans, "chat ")
    assert chat.status.status_code == StatusCode.ERROR


async def test_mcp_server_that_cannot_be_listed_is_left_out(bank: BankTools) -> None:
    """A server that is down is not offered; the others still are."""
    servers = (mcp("ticket-mcp", "http://127.0.0.1:9", timeout=2), *support_bot(bank).mcp_servers)
    model = PlanModel(lambda r: answer(",".join(sorted(offered(r)))))
    with running_agent(agent_spec(mcp_servers=servers), model) as agent:
        task, _ = await ask(agent.url, "what can you do?")
    assert reply_text(task) == "convert_currency,get_balance,get_profile,list_recent"
