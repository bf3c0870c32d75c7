"""The agent keeps every running task and only its latest finished ones; what it forgets is counted."""

from __future__ import annotations

import pytest
from a2a.client import ClientConfig, create_client
from a2a.server.context import ServerCallContext
from a2a.types import a2a_pb2 as a2a
from a2a.utils.errors import TaskNotFoundError

from tests.agents.a2a.support import PlanModel, agent_spec, answer, ask, running_agent
from trustusbank.agents.a2a.task_store import BoundedTaskStore


async def test_an_agent_keeps_its_latest_finished_tasks_and_counts_what_it_forgets() -> None:
    spec = agent_spec()
    with running_agent(spec, PlanModel(lambda request: answer("done")), max_finished_tasks=2) as agent:
        tasks = [(await ask(agent.url, f"question {n}"))[0] for n in range(4)]
        client = await create_client(f"{agent.url}/", client_config=ClientConfig(streaming=False))
        try:
            for kept in tasks[2:]:
                assert (await client.get_task(a2a.GetTaskRequest(id=kept.id))).id == kept.id
            for forgotten in tasks[:2]:
                with pytest.raises(TaskNotFoundError):
                    await client.get_task(a2a.GetTaskRequest(id=forgotten.id))
        finally:
            await client.close()
        labels = {"agent": spec.name, "namespace": spec.namespace}
        assert agent.registry.get_sample_value("trustusbank_agent_tasks_dropped_total", labels) == 2


def _task(task_id: str, state: int) -> a2a.Task:
    return a2a.Task(id=task_id, context_id="c", status=a2a.TaskStatus(state=state))


async def test_a_running_task_is_never_dropped_and_a_finished_one_is_dropped_oldest_first() -> None:
    dropped: list[int] = []
    store = BoundedTaskStore(max_finished=1, dropped=lambda: dropped.append(1))
    context = ServerCallContext()
    await store.save(_task("running", a2a.TASK_STATE_WORKING), context)
    await store.save(_task("first", a2a.TASK_STATE_COMPLETED), context)
    await store.save(_task("second", a2a.TASK_STATE_FAILED), context)
    assert await store.get("first", context) is None
    assert (await store.get("second", context)) is not None
    assert (await store.get("running", context)) is not None  # however many finish after it
    await store.save(_task("running", a2a.TASK_STATE_COMPLETED), context)  # it ends: now it counts
    assert await store.get("second", context) is None
    assert (len(store), len(dropped)) == (1, 2)
    with pytest.raises(ValueError, match="at least 1"):
        BoundedTaskStore(max_finished=0)
