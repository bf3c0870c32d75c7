"""The system tests: on the session's embedded cluster (`cluster`, tests/session_cluster.py).

Tests that change it (policies, killed pods) put it back as they found it.

Under xdist (`make test` runs `pytest -n 2 --dist loadgroup`) every test here, and in
tests/browser (which drives the same cluster), is in one xdist group, so one worker runs them
all: the session cluster starts once, on that worker, and no two clusters start at the same
time; the other worker runs the unit tests meanwhile, and own_cluster/: tests that start a
cluster of their own and never use the session's, a group of their own (tests/conftest.py). A
test here that starts a second cluster beside the session's (marker `own_cluster`) runs last in
the group: by then the other worker has usually run out of unit tests, and the session cluster
idles (about a tenth of a core).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.session_cluster import Cluster, policy_reloads, set_defence

__all__ = ["Cluster", "policy_reloads", "set_defence"]  # the system tests import them from here

SYSTEM = Path(__file__).parent
OWN_CLUSTER = SYSTEM / "own_cluster"
GROUP = "system"


@pytest.hookimpl(tryfirst=True)  # xdist's own hook reads the groups; it must see them whatever the order
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slots = [n for n, item in enumerate(items) if SYSTEM in item.path.parents]
    slots = [n for n in slots if OWN_CLUSTER not in items[n].path.parents]
    for n in slots:
        items[n].add_marker(pytest.mark.xdist_group(GROUP))
    ordered = sorted((items[n] for n in slots), key=lambda item: bool(item.get_closest_marker("own_cluster")))
    for n, item in zip(slots, ordered, strict=True):
        items[n] = item
