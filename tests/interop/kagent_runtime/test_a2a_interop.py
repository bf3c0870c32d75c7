"""What the project's A2A client (a2a-sdk 1.x, as the chatbot uses it) gets from a kagent pod.

kagent-adk 0.10 serves A2A protocol 0.3; a2a-sdk 1.x reads its card and talks to it. The
task it returns is kagent's shape, not the embedded runtime's: the answer is one unnamed
artifact, and the tool calls are the history's data parts that kagent marks
`kagent_type: function_call` (their results: `function_response`). There is no "reply" or
"tool-calls" artifact, which is what `trustusbank.workloads.chatbot.client.result_from_task`
reads today.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import get_text_parts
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, Task, TaskState
from google.protobuf.json_format import MessageToDict

from tests.interop.kagent_runtime.conftest import Bank
from tests.interop.kagent_runtime.support import KagentPod
from trustusbank.scenario.cluster import SEED_PROMPT
from trustusbank.workloads.chatbot.client import result_from_task

pytestmark = pytest.mark.slow


def kagent_calls(task: Task) -> list[tuple[str, dict[str, Any]]]:
    """(tool, arguments) of every call in the history, in order, from kagent's function_call parts."""
    calls = []
    for message in task.history:
        for part in message.parts:
            if part.HasField("data") and MessageToDict(part.metadata).get("kagent_type") == "function_call":
                data = MessageToDict(part.data)
                calls.append((data["name"], data.get("args", {})))
    return calls


async def test_the_projects_a2a_client_gets_kagents_answer_and_calls(
    clean: Bank, clean_pod: KagentPod
) -> None:
    message = Message(role=Role.ROLE_USER, message_id="seed-1", parts=[Part(text=SEED_PROMPT)])
    async with httpx.AsyncClient(timeout=120.0) as http:
        card = await A2ACardResolver(http, f"{clean_pod.url}/").get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
        events = [event async for event in client.send_message(SendMessageRequest(message=message))]
    (task,) = [e.task for e in events if e.HasField("task")]

    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [a.name for a in task.artifacts] == [""], "one artifact, unnamed"
    (answer,) = get_text_parts(task.artifacts[0].parts)
    assert answer.splitlines()[0] == "Your balance is £4,287.55 (about $5,445.19 USD)."
    # Numbers cross as protobuf doubles (30 -> 30.0), which compare equal.
    assert kagent_calls(task) == [(c.tool, c.arguments) for c in clean.calls.calls]
    assert [name for name, _ in kagent_calls(task)] == ["get_balance", "list_recent", "convert_currency"]
    # The chatbot's client (`trustusbank ask`, the acts' receipts) reads kagent's task as it reads ours.
    said = result_from_task(task)
    assert said.reply == answer
    assert [(s["name"], s["arguments"]) for s in said.tool_calls] == [
        (c.tool, c.arguments) for c in clean.calls.calls
    ]
    assert all("result" in s and not s["is_error"] for s in said.tool_calls)
