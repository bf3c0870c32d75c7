"""An A2A task is one run of the loop: the task's states and artifacts report the run.

Submitted, then working (one status update per tool call, so a streaming client can
show progress), then completed with two artifacts: "reply" (the answer, as text) and
"tool-calls" (the chain of calls, as data), with the answer also as the final status
message for clients that read only that. A model error fails the task with the
error's message; a message without text is rejected. The caller's trace context is
read from the request's headers, so the run's span joins the caller's trace.
"""

from __future__ import annotations

import json
import logging

from a2a.helpers import new_data_part, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2 as a2a

from trustusbank.agents.a2a.delegation import REPLY_ARTIFACT, TOOL_CALLS_ARTIFACT
from trustusbank.agents.a2a.loop import AgentLoop
from trustusbank.agents.a2a.mcp_tools import describe_error
from trustusbank.agents.a2a.metrics import AgentMetrics
from trustusbank.agents.model.types import ModelError
from trustusbank.telemetry.tracing import extract

log = logging.getLogger(__name__)


class LoopExecutor(AgentExecutor):
    def __init__(self, loop: AgentLoop, metrics: AgentMetrics) -> None:
        self.loop = loop
        self.metrics = metrics

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        if context.current_task is None and context.message is not None:
            await event_queue.enqueue_event(
                a2a.Task(
                    id=task_id,
                    context_id=context_id,
                    status=a2a.TaskStatus(state=a2a.TaskState.TASK_STATE_SUBMITTED),
                    history=[context.message],
                )
            )
        updater = TaskUpdater(event_queue, task_id, context_id)

        def say(text: str) -> a2a.Message:
            return updater.new_agent_message([new_text_part(text)])

        text = context.get_user_input().strip()
        if not text:
            self.metrics.request("rejected")
            await updater.reject(say("I can only answer messages that contain text."))
            return
        await updater.start_work()

        async def progress(note: str) -> None:
            await updater.update_status(a2a.TaskState.TASK_STATE_WORKING, message=say(note))

        headers = context.call_context.state.get("headers", {})
        try:
            result = await self.loop.run(text, context_id, parent=extract(headers), progress=progress)
        except ModelError as exc:
            self.metrics.request("failed")
            await updater.failed(say(f"The model failed: {describe_error(exc)}"))
            return
        except Exception as exc:
            log.exception("agent run failed")
            self.metrics.request("failed")
            await updater.failed(say(f"The agent failed: {describe_error(exc)}"))
            return
        self.metrics.request("stopped" if result.stop_reason else "completed")
        await updater.add_artifact([new_text_part(result.reply)], name=REPLY_ARTIFACT)
        chain = json.loads(
            json.dumps(result.chain(), default=str)
        )  # arguments are the model's: make them JSON
        await updater.add_artifact([new_data_part(chain)], name=TOOL_CALLS_ARTIFACT)
        await updater.complete(say(result.reply))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        await updater.cancel()
