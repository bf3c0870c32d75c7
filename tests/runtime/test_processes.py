"""A supervised process's exits in the runtime log: a crash is a crash even when a stop follows it."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from trustusbank.runtime.processes import ManagedProcess, has_exited


class Log:
    """The runtime log of one process, in memory."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []
        self.seen: dict[str, asyncio.Event] = {}

    def record(self, kind: str, fields: dict[str, object]) -> None:
        self.events.append((kind, fields))
        self.seen.setdefault(kind, asyncio.Event()).set()

    async def first(self, kind: str) -> None:
        await asyncio.wait_for(self.seen.setdefault(kind, asyncio.Event()).wait(), 30)

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


async def never_ready() -> bool:
    return False


def managed(tmp_path: Path, code: str, log: Log) -> ManagedProcess:
    return ManagedProcess(
        name="shop/web-0",
        command=[sys.executable, "-c", code],
        env=dict(os.environ),
        log_file=tmp_path / "web.log",
        probe=never_ready,
        events=log.record,
    )


async def test_an_exit_asyncio_has_not_noticed_when_stop_begins_is_recorded_as_a_crash(
    tmp_path: Path,
) -> None:
    """`up` gives up on a pod (its readiness deadline) just as the pod dies: that death is a crash."""
    log = Log()
    process = managed(tmp_path, "raise SystemExit(3)", log)
    await process.start()
    await log.first("started")
    child = process.proc
    assert child is not None
    # Hold the event loop until the kernel says the child is dead: the loop cannot have run
    # the child watcher's callback, so asyncio still sees a running process.
    deadline = time.monotonic() + 30
    while not has_exited(child) and time.monotonic() < deadline:
        time.sleep(0.01)  # noqa: ASYNC251 - blocking on purpose
    assert child.returncode is None, "asyncio has not seen the exit yet"

    await process.stop()

    assert log.kinds == ["started", "crashed", "stopped"]
    crashed = log.events[1][1]
    assert crashed["exit_code"] == 3
    assert crashed["restart_in_s"] is None, "stopping: not restarted"
    assert process.restarts == 0


async def test_the_exit_stop_causes_is_a_stop_not_a_crash(tmp_path: Path) -> None:
    log = Log()
    process = managed(tmp_path, "import time; time.sleep(60)", log)
    await process.start()
    await log.first("started")

    await process.stop()

    assert process.proc is not None
    assert process.proc.returncode is not None
    assert log.kinds == ["started", "stopped"]


async def test_stopping_during_the_backoff_keeps_the_crash_and_restarts_nothing(tmp_path: Path) -> None:
    log = Log()
    process = managed(tmp_path, "raise SystemExit(5)", log)
    await process.start()
    await log.first("crashed")  # the restart is 0.5s away

    await process.stop()

    assert log.kinds == ["started", "crashed", "stopped"], "nothing started after stop"
    assert log.events[1][1]["exit_code"] == 5
    assert log.events[1][1]["restart_in_s"] == 0.5
    assert process.restarts == 1
