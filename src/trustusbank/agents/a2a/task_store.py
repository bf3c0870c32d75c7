"""The agent's A2A task store: every task while it runs, only the latest finished ones after.

a2a-sdk's InMemoryTaskStore keeps every task it is given, so an agent answering customers for
days grows without limit. A finished task (completed, failed, canceled, rejected) is read back
only by a client polling `tasks/get` soon after it ends, so the store keeps the latest
`max_finished` of them, forgets the oldest first and counts each one it forgets; a task still
running (or waiting for input) is never dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task, TaskState

FINISHED = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)
MAX_FINISHED = 1000


class BoundedTaskStore(TaskStore):
    def __init__(self, max_finished: int = MAX_FINISHED, dropped: Callable[[], None] = lambda: None) -> None:
        if max_finished < 1:
            raise ValueError("max_finished must be at least 1")
        self.max_finished = max_finished
        self._dropped = dropped
        self._inner = InMemoryTaskStore()
        self._finished: OrderedDict[str, ServerCallContext] = OrderedDict()  # oldest first

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self._inner.save(task, context)
        if task.status.state not in FINISHED:
            self._finished.pop(task.id, None)  # running again: never dropped while it runs
            return
        self._finished[task.id] = context
        self._finished.move_to_end(task.id)
        while len(self._finished) > self.max_finished:
            oldest, owner = self._finished.popitem(last=False)
            await self._inner.delete(oldest, owner)
            self._dropped()

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        return await self._inner.get(task_id, context)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self._inner.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        self._finished.pop(task_id, None)
        await self._inner.delete(task_id, context)

    def __len__(self) -> int:
        """Finished tasks kept (running ones are not counted)."""
        return len(self._finished)
