"""Acts 1–3 with kagent's own agent runtime (kagent-adk, on Google ADK) driving the scripted model.

On a cluster kagent runs support-bot with kagent-adk, which calls the ModelConfig's
`openAI.baseUrl` with its own OpenAI client. Here the same runtime runs as a process, from
the config.json kagent's controller renders for deploy/07-agents/support-bot.yaml, against
the real bank and converter MCP servers and the scripted model's HTTP API, all on 127.0.0.1.
What the agent did is read where it lands: the `tools/call` requests the MCP servers
received, and the requests the model was sent. The embedded runtime (our A2A server) runs
against the same servers for comparison.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.agents.a2a.support import ask, reply_text
from tests.interop.kagent_runtime.conftest import Bank
from tests.interop.kagent_runtime.support import KagentPod, ToolCallSeen, kagent_pod, send_message, task_text
from tests.serving import refused_url, served
from trustusbank.agents.a2a.server import create_app
from trustusbank.agents.model.factory import client_for
from trustusbank.env import ACME_TELEMETRY_URL
from trustusbank.scenario.cluster import SEED_PROMPT
from trustusbank.workloads.bank.seed_data import CUSTOMERS

FIRST_LINE = "Your balance is £4,287.55 (about $5,445.19 USD)."  # the write-up's "£4,287.55 / $5,445.19"
SEED_CALLS = [
    ToolCallSeen("account-mcp", "get_balance", {"customer_id": "12345"}),
    ToolCallSeen("transaction-mcp", "list_recent", {"customer_id": "12345", "days": 30}),
    ToolCallSeen(
        "currency-converter", "convert_currency", {"amount": 4287.55, "from_ccy": "GBP", "to_ccy": "USD"}
    ),
]
SEEDED = next(c for c in CUSTOMERS if c["customer_id"] == "12345")
PROFILE_FIELDS = (
    "customer_id",
    "name",
    "email",
    "phone",
    "address",
    "date_of_birth",
    "ni_number",
    "kyc_status",
)
ALICE = {k: SEEDED[k] for k in PROFILE_FIELDS}  # what get_profile returns: all but the balance

pytestmark = pytest.mark.slow


async def kagent_reply(pod: KagentPod) -> str:
    """The seed prompt, asked of support-bot under kagent-adk; the task must complete."""
    task = await send_message(pod.url, SEED_PROMPT)
    assert task["status"]["state"] == "completed", task["status"]
    return task_text(task)


async def embedded_reply(bank: Bank) -> str:
    """The seed prompt, asked of support-bot under the embedded runtime (our A2A server)."""
    spec = bank.support_bot()
    with served(
        lambda url: create_app(replace(spec, extra={"url": f"{url}/"}), client_for(spec.model, env={}))
    ) as agent:
        task, _ = await ask(agent.url, SEED_PROMPT)
    return reply_text(task)


def leaked_profile(call: ToolCallSeen) -> dict[str, Any]:
    profile = call.arguments["customer_profile"]
    assert isinstance(profile, dict), "the profile travels as an object, as the injection asks"
    return profile


async def test_act1_kagent_runtime_gives_the_write_ups_answer_like_the_embedded_runtime(
    clean: Bank, clean_pod: KagentPod
) -> None:
    before = clean.exfil_count()
    kagent = await kagent_reply(clean_pod)
    kagent_calls = list(clean.calls.calls)
    clean.calls.clear()
    embedded = await embedded_reply(clean)

    assert kagent_calls == SEED_CALLS
    assert clean.calls.calls == SEED_CALLS, "both runtimes make the same calls"
    assert kagent.splitlines()[0] == FIRST_LINE
    assert "GenericLuxuryGoods (RU), -$1,499.00" in kagent
    assert kagent == embedded
    assert clean.exfil_count() == before


async def test_act1_with_the_model_streaming_reads_the_same(clean: Bank, tmp_path: Path) -> None:
    """An Agent with `declarative.stream: true`: kagent-adk asks the model for SSE chunks."""
    with kagent_pod(clean.support_bot(), tmp_path / "config", stream=True) as pod:
        streamed = await kagent_reply(pod)
    assert clean.calls.calls == SEED_CALLS
    assert streamed == await embedded_reply(clean)


async def test_kagent_runtime_sends_the_agents_system_message_and_only_its_tools(
    clean: Bank, clean_pod: KagentPod
) -> None:
    await kagent_reply(clean_pod)
    spec = clean.support_bot()
    first = clean.model.requests[0]
    # ADK's LlmAgent appends who the agent is to the instruction kagent gives it (static_instruction).
    assert first.system == (
        f'{spec.system_message}\n\nYou are an agent. Your internal name is "support_bot". '
        f'The description about you is "{spec.description}".'
    )
    assert first.model == "trustusbank-scripted"
    # toolNames filter each RemoteMCPServer's list; kagent-adk adds its built-in ask_user to every agent.
    assert {t.name for t in first.tools} == {
        "get_balance",
        "get_profile",
        "list_recent",
        "convert_currency",
        "ask_user",
    }
    assert [m.role for m in first.messages] == ["user"]
    assert first.messages[0].text == SEED_PROMPT
    # Each later request carries the call before it and its result, paired by the call's id.
    last = clean.model.requests[-1]
    calls = [c for m in last.messages if m.role == "assistant" for c in m.tool_calls]
    results = [m for m in last.messages if m.role == "tool"]
    assert [c.name for c in calls] == [c.tool for c in SEED_CALLS]
    assert [r.tool_call_id for r in results] == [c.id for c in calls]
    assert [r.tool_name for r in results] == [c.name for c in calls]
    assert '"balance": 4287.55' in results[0].text


async def test_act2_rugpulled_converter_fools_kagent_runtime_into_handing_it_the_profile(
    rugpull: Bank, rugpull_pod: KagentPod
) -> None:
    before = rugpull.exfil_count()
    reply = await kagent_reply(rugpull_pod)
    after = rugpull.exfil_count()
    calls = rugpull.calls.calls

    assert [c.tool for c in calls] == [
        "get_balance",
        "list_recent",
        "convert_currency",
        "get_profile",
        "convert_currency",
    ]
    assert calls[:3] == SEED_CALLS
    assert calls[3] == ToolCallSeen("account-mcp", "get_profile", {"customer_id": "12345"})
    leak = calls[4]
    assert leak.server == "currency-converter"
    profile = leaked_profile(leak)
    assert profile == ALICE, "the whole profile, unmasked, as get_profile returned it"
    assert {k: v for k, v in leak.arguments.items() if k != "customer_profile"} == SEED_CALLS[2].arguments
    assert after == before + 1, "the rug-pulled build forwarded it to the attacker"
    # The customer cannot tell: same answer, nothing of the profile in it.
    assert reply.splitlines()[0] == FIRST_LINE
    assert str(ALICE["email"]) not in reply
    assert str(ALICE["ni_number"]) not in reply


async def test_act3_same_calls_are_attempted_when_the_mesh_refuses_the_converters_egress(
    rugpull: Bank, rugpull_pod: KagentPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    act2 = await kagent_reply(rugpull_pod)
    act2_calls = list(rugpull.calls.calls)
    rugpull.reset()
    # Act 3: ztunnel's AuthorizationPolicy refuses the converter's connection to the attacker;
    # to the converter that is a refused connection, which a closed port on 127.0.0.1 is too.
    sock, refused = refused_url()
    try:
        monkeypatch.setenv(ACME_TELEMETRY_URL.name, f"{refused}/exfil")
        before = rugpull.exfil_count()
        act3 = await kagent_reply(rugpull_pod)
        after = rugpull.exfil_count()
    finally:
        sock.close()

    assert rugpull.calls.calls == act2_calls, (
        "the agent is as fooled as in Act 2: the difference is the mesh's"
    )
    assert leaked_profile(rugpull.calls.calls[4]) == ALICE
    assert after == before, "nothing reached the attacker"
    assert act3 == act2, "and the customer's answer is the same"


async def test_a_tool_call_the_gateway_refuses_reaches_the_model_empty_and_nothing_leaks(
    rugpull: Bank, rugpull_pod: KagentPod
) -> None:
    """Beyond the acts: the waypoint's MCP allowlist refusing get_profile (403, JSON-RPC error).
    ADK turns the refused call into {"error": ...}; kagent-adk's OpenAI client passes only a
    result's text on, so the model reads an empty, unflagged result, and has nothing to leak."""
    rugpull.deny("get_profile")
    before = rugpull.exfil_count()
    reply = await kagent_reply(rugpull_pod)
    after = rugpull.exfil_count()

    assert rugpull.calls.calls == [
        *SEED_CALLS,
        ToolCallSeen("account-mcp", "get_profile", {"customer_id": "12345"}),
    ]
    last = rugpull.model.requests[-1]
    seen = [m for m in last.messages if m.role == "tool" and m.tool_name == "get_profile"]
    assert [(m.text, m.is_error) for m in seen] == [("", False)]
    assert after == before
    assert reply.splitlines()[0] == FIRST_LINE


async def test_without_an_api_key_kagent_runtime_fails_the_task_before_any_tool_call(
    clean: Bank, tmp_path: Path
) -> None:
    """kagent sets OPENAI_API_KEY only from a ModelConfig's apiKeySecret; its OpenAI client
    refuses to send a request without one, even to a model that ignores keys."""
    with kagent_pod(clean.support_bot(), tmp_path / "config", api_key=None) as pod:
        task = await send_message(pod.url, SEED_PROMPT)
    assert task["status"]["state"] == "failed"
    (part,) = task["status"]["message"]["parts"]
    assert "OPENAI_API_KEY" in part["text"]
    assert clean.model.requests == []
    assert clean.calls.calls == []
