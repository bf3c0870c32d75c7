"""Shared fixtures: workloads run as real `trustusbank serve` processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trustusbank.workloads.launcher import Process, start


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def serve(state_dir: Path) -> Iterator[Callable[..., Process]]:
    """Start `trustusbank serve NAME ARGS...` on a free port; stopped at teardown."""
    started: list[Process] = []

    def launch(name: str, *args: str, env: dict[str, str] | None = None) -> Process:
        process = start(name, *args, state_dir=state_dir, env=env)
        started.append(process)
        return process

    yield launch
    for process in started:
        process.stop()
