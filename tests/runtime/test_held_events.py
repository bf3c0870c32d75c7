"""A full state disk under a running supervisor: events are held in order, status goes stale, nothing
stops, and both are written once the disk has room (a real small tmpfs, tests/tmpfs.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from tests.tmpfs import fill, small_disk
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.held_events import HeldEvents
from trustusbank.runtime.supervisor import Supervisor


@pytest.fixture
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    with small_disk(request, tmp_path / "disk", "512k") as mounted:
        yield mounted


BIG = {"note": "x" * 8192}  # past the slack of the events file's last page: the write needs a new one


FRAGMENT = ("fragment", None)  # what a write the disk cut short left (ended by the next append)


def written(files: ClusterFiles) -> list[tuple[str, object]]:
    def line(text: str) -> tuple[str, object]:
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            return FRAGMENT
        return entry["event"], entry.get("process", entry.get("count"))

    return [line(text) for text in files.events.read_text().splitlines()]


def test_events_the_disk_refuses_are_held_in_order_and_written_once_it_has_room(disk: Path) -> None:
    files = ClusterFiles(disk / "state")
    files.make()
    events = HeldEvents(files)
    events.record("started", {"process": "ns/a"})
    filler = fill(disk)

    for name in ("ns/b", "ns/c"):  # no exception: the task that restarts a pod must live on
        events.record("crashed", {"process": name, **BIG})
    assert [e["process"] for e in events.held] == ["ns/b", "ns/c"]
    assert not events.flush()
    assert written(files) == [("started", "ns/a"), FRAGMENT]  # the first try filled the last page

    filler.unlink()
    events.record("restarted", {"process": "ns/d"})  # the next event writes what is held first
    after = [("crashed", "ns/b"), ("crashed", "ns/c"), ("restarted", "ns/d")]
    assert written(files) == [("started", "ns/a"), FRAGMENT, *after]
    assert not events.held


def test_past_the_limit_the_oldest_held_are_forgotten_and_their_count_written_first(disk: Path) -> None:
    files = ClusterFiles(disk / "state")
    files.make()
    events = HeldEvents(files, limit=2)
    filler = fill(disk)
    for name in ("ns/a", "ns/b", "ns/c", "ns/d"):
        events.record("crashed", {"process": name, **BIG})
    assert (len(events.held), events.dropped) == (2, 2)

    filler.unlink()
    assert events.flush()
    assert written(files) == [("events-dropped", 2), ("crashed", "ns/c"), ("crashed", "ns/d")]


def test_the_supervisor_runs_on_while_status_cannot_be_written(disk: Path) -> None:
    files = ClusterFiles(disk / "state")
    files.make()
    supervisor = Supervisor(files, DEPLOY, progress=lambda _: None)
    supervisor.write_status()
    filler = fill(disk)

    supervisor.phase = "Running"
    supervisor.write_status()  # no exception: the cluster runs on, its status.json stale
    assert json.loads(files.status.read_text())["phase"] == "Starting"
    supervisor.event("crashed", {"process": "ns/a", "exit_code": -9, "restart_in_s": 0.5, **BIG})
    assert len(supervisor.events.held) == 1

    filler.unlink()
    supervisor.events.flush()
    supervisor.write_status()
    assert json.loads(files.status.read_text())["phase"] == "Running"
    assert written(files)[-1] == ("crashed", "ns/a")
