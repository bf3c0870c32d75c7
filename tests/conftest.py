"""Shared fixtures: workloads run as real `trustusbank serve` processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.session_cluster import cluster, defence_on
from trustusbank.workloads.launcher import Process, start

# Defined once, here, for tests/system and tests/browser: one cluster per session.
__all__ = ["cluster", "defence_on"]

TESTS = Path(__file__).parent
SYSTEM = TESTS / "system"
# System tests that start a cluster of their own and never touch the session's: a group of their
# own, so the unit tests' worker runs them while the other drives the session cluster.
OWN_CLUSTER = SYSTEM / "own_cluster"
BROWSER = TESTS / "browser"  # drives the same session cluster: the same group
# Tests that share one expensive module fixture run on one worker, and start first: split over
# two workers, both would build it (the image's root filesystem: two cold minutes each, into one
# cache), and a long group handed out last keeps the run waiting on one worker.
SHARED_SETUP = {
    TESTS / "k8s" / "test_rootfs.py": "rootfs",
    TESTS / "interop" / "kagent_runtime": "kagent-runtime",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    """The browser tests' option (tests/browser/conftest.py): here, where pytest reads options first."""
    parser.addoption(
        "--screenshots-to",
        type=Path,
        default=None,
        help="also write each tab as the window shows it, DIR/<tab>.jpg (the README's pictures)",
    )


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown (and never called) without xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` (make test) with tests/system and tests/browser as one group, for one worker.

    tests/system/conftest.py marks its tests `xdist_group("system")`, but xdist carries a test's
    group from worker to scheduler as a suffix it writes into the node id, which pytest 9.2's
    structured node ids no longer keep (pytest-dev/pytest-xdist#1386): the tests would be spread
    over the workers, each starting a session cluster. So the group is also named here, by path.
    A bare `-n N` (xdist's `--dist load`) gets the same, rather than N clusters at once.
    """
    if config.getoption("dist") not in ("load", "loadgroup"):
        return None
    from xdist.scheduler import LoadGroupScheduling

    together = tuple(path.relative_to(config.rootpath).as_posix() + "/" for path in (SYSTEM, BROWSER))
    own = OWN_CLUSTER.relative_to(config.rootpath).as_posix() + "/"
    shared = {path.relative_to(config.rootpath).as_posix(): group for path, group in SHARED_SETUP.items()}

    class SystemTestsTogether(LoadGroupScheduling):
        # xdist hands out the largest groups first (`--loadscope-reorder`, its default): the
        # system group to one worker, then these to the other, then single tests as it frees up.
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(own):
                return "own-cluster"
            if nodeid.startswith(together):
                return "system"
            for prefix, group in shared.items():
                if nodeid.startswith(prefix):
                    return group
            return str(super()._split_scope(nodeid))

    return SystemTestsTogether(config, log)


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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Where the browser tests' screenshots are (tests/browser/conftest.py), also under xdist.

    Here, not in tests/browser: xdist's controller loads only this conftest, and the folder is a
    worker's, carried back in the reports' user properties."""
    folders: dict[str, int] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) == "call":
                for name, value in getattr(report, "user_properties", ()):
                    if name == "screenshots":
                        folders[value] = folders.get(value, 0) + 1
    for folder, tests in sorted(folders.items()):
        terminalreporter.write_line(f"screenshots of {tests} browser test(s): {folder}")
