"""The wait behind `policies on|off`, the acts and the follow-on demos: read from the node proxies' logs.

The logs are written here by a task standing in for ztunnel's policy store (its log line,
as `mesh/ztunnel/policy_store.py` writes it); the system tests run the real node proxies.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.mesh.ztunnel import policy_store
from trustusbank.runtime import defence
from trustusbank.runtime.defence import DefenceError, defence_files, wait_loaded

DENY = "external-attacker/deny-bank-to-attacker"
VENDOR_DENY = "trustusbank-bank-vendors/default-deny"


def _log(path: Path, refs: list[str]) -> None:
    with path.open("a") as handle:
        handle.write(
            f"2026-12-03 00:00:00,000 INFO {policy_store.log.name}: {policy_store.LOADED} {', '.join(refs)}\n"
        )


def _unreadable(path: Path) -> None:
    with path.open("a") as handle:
        handle.write(
            f"2026-12-03 00:00:00,000 ERROR {policy_store.log.name}: {policy_store.UNREADABLE} gone.yaml\n"
        )


async def test_the_wait_ends_only_when_every_node_logged_the_wanted_set(tmp_path: Path) -> None:
    a, b = tmp_path / "ztunnel-a.log", tmp_path / "ztunnel-b.log"
    _log(a, [DENY, VENDOR_DENY])  # before the change: ignored
    marks = {a: a.stat().st_size, b: 0}

    async def nodes() -> None:
        await asyncio.sleep(0.1)
        _log(a, ["other/allow"])
        await asyncio.sleep(0.1)
        _log(b, [DENY])  # still holds a policy that should be gone
        await asyncio.sleep(0.1)
        _log(b, ["other/allow"])

    writer = asyncio.create_task(nodes())
    waited = await wait_loaded(marks, present={"other/allow"}, absent={DENY, VENDOR_DENY})
    await writer
    assert waited >= 0.3


async def test_a_transient_unreadable_set_is_waited_through(tmp_path: Path) -> None:
    """A reload that raced a writer is refused (the last good set stays) until the next one; the wait sees
    the next one."""
    log = tmp_path / "ztunnel-a.log"
    _unreadable(log)
    quoted = (
        'error access connection failed error="connection closed due to policy change: policy set unreadable"'
    )
    log.open("a").write(quoted + "\n")  # an access-log line quoting the error is not a reload

    async def later() -> None:
        await asyncio.sleep(0.1)
        _log(log, [DENY])

    writer = asyncio.create_task(later())
    await wait_loaded({log: 0}, present={DENY}, absent=set())
    await writer


async def test_a_node_stuck_unreadable_times_out_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defence, "PICKUP_TIMEOUT", 0.2)
    log = tmp_path / "ztunnel-a.log"
    _unreadable(log)
    with pytest.raises(DefenceError, match="could not read the policy set"):
        await wait_loaded({log: 0}, present={DENY}, absent=set())


async def test_a_node_that_never_loads_times_out_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defence, "PICKUP_TIMEOUT", 0.2)
    log = tmp_path / "ztunnel-worker-2.log"
    with pytest.raises(DefenceError, match="ztunnel-worker-2"):
        await wait_loaded({log: 0}, present={DENY}, absent=set())


def test_the_set_is_the_files_of_deploy_08_defence() -> None:
    assert sorted(defence_files(DEPLOY)) == sorted(p.name for p in (DEPLOY / "08-defence").glob("*.yaml"))
    refs = set().union(*(defence._policy_refs(p) for p in defence_files(DEPLOY).values()))
    assert {DENY, VENDOR_DENY} <= refs
