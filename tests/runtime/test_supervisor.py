"""A failed start, as `up --detach` sees it: status Failed is the end state, never a step on the way."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.control import alive, read_status
from trustusbank.runtime.processes import ManagedProcess
from trustusbank.runtime.supervisor import StartupFailed, Supervisor


class FailingStart(Supervisor):
    """Starts one pod that never gets ready, then gives up on it as `start` does."""

    def __init__(self, files: ClusterFiles) -> None:
        super().__init__(files, DEPLOY, progress=lambda _: None)
        self.published: list[tuple[str, bool, list[int]]] = []  # phase, pid file there, pids running
        self.started: list[int] = []

    def write_status(self) -> None:
        super().write_status()
        running = [pid for pid in self.started if alive(pid)]
        self.published.append((self.phase, self.files.pid.exists(), running))

    async def start(self) -> None:
        ready = asyncio.Event()

        def events(kind: str, fields: dict[str, object]) -> None:
            if kind == "started":
                self.started.append(int(str(fields["pid"])))
                ready.set()

        async def never() -> bool:
            return False

        pod = ManagedProcess(
            name="shop/web-0",
            command=[sys.executable, "-c", "import time; time.sleep(60)"],
            env=dict(os.environ),
            log_file=self.files.pod_log("shop", "web-0"),
            probe=never,
            events=events,
        )
        self.pods = {pod.name: pod}
        await pod.start()
        await ready.wait()
        raise StartupFailed("pod shop/web-0 did not become ready")


async def test_failed_is_published_once_everything_is_stopped_and_the_pid_file_is_gone(
    tmp_path: Path,
) -> None:
    files = ClusterFiles(tmp_path / "state")
    files.make()
    files.pid.write_text(str(os.getpid()))
    supervisor = FailingStart(files)

    with pytest.raises(StartupFailed):
        await supervisor.run(asyncio.Event())

    phases = [phase for phase, _, _ in supervisor.published]
    assert phases.count("Failed") == 1, f"Failed only as the last word: {phases}"
    assert phases[-1] == "Failed"
    _, pid_file_there, running = supervisor.published[-1]
    assert not pid_file_there, "the pid file is gone when Failed is published"
    assert supervisor.started
    assert running == [], "nothing it started still runs when Failed is published"
    status = read_status(files)
    assert status is not None
    assert status["phase"] == "Failed"
    assert "did not become ready" in status["message"]
