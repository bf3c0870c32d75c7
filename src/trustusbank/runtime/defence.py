"""The defence set (deploy/08-defence) on the running cluster: which of it is on, change that, and wait.

`policies on|off`, the acts and the follow-on demos all change the same thing, so they
share one definition of "on" (every file of the set applied) and one wait: a change is
in force when every node proxy has logged a policy set holding exactly the set's
policies that should be there, not after a guessed pause. A node proxy that cannot read
the new set denies everything and says so; that ends the wait with an error rather than
a silent pass.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from trustusbank.cluster.layout import DEFENCE_DIR, ClusterFiles
from trustusbank.cluster.topology import Topology
from trustusbank.errors import OperationError
from trustusbank.manifests.yaml_source import read_documents, yaml_files
from trustusbank.runtime.apply import applied, apply, delete

LOADED = "policies loaded:"
UNREADABLE = "policy set unreadable"
PICKUP_TIMEOUT = 15.0


class DefenceError(OperationError, RuntimeError):
    """The defence set did not come into (or go out of) force on every node proxy."""


def defence_sources(deploy: Path) -> list[Path]:
    return [deploy / DEFENCE_DIR]


def defence_files(deploy: Path) -> dict[str, Path]:
    return {p.name: p for p in yaml_files(deploy / DEFENCE_DIR)}


def applied_defence(files: ClusterFiles, deploy: Path) -> set[str]:
    """The names of the set's files that are applied now."""
    return {p.name for p in applied(files)} & set(defence_files(deploy))


def defence_state(files: ClusterFiles, deploy: Path) -> str:
    """ "on", "off" or "partly on", from what is applied (what `policies status` says)."""
    names, every = applied_defence(files, deploy), set(defence_files(deploy))
    return "on" if names == every else "off" if not names else "partly on"


def _policy_refs(path: Path) -> set[str]:
    documents, _ = read_documents(path)
    return {
        f"{d.data['metadata'].get('namespace', 'default')}/{d.data['metadata']['name']}"
        for d in documents
        if isinstance(d.data, dict) and d.data.get("kind") == "AuthorizationPolicy"
    }


def _loaded_refs(log: Path, offset: int) -> set[str] | None:
    """The policy set the node proxy last logged after byte `offset`, None if it logged none yet."""
    if not log.exists():
        return None
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if LOADED in line or UNREADABLE in line]
    if not lines:
        return None
    if UNREADABLE in lines[-1]:
        raise DefenceError(f"{log.stem} could not read the policy set: {lines[-1].strip()}")
    return {ref.strip() for ref in lines[-1].split(LOADED, 1)[1].split(",")}


async def wait_loaded(marks: dict[Path, int], present: set[str], absent: set[str]) -> float:
    """Seconds until every node log in `marks` shows a load holding `present` and none of `absent`."""
    started = time.monotonic()
    waiting = dict(marks)
    while True:
        for log, offset in list(waiting.items()):
            refs = _loaded_refs(log, offset)
            if refs is not None and present <= refs and not absent & refs:
                del waiting[log]
        if not waiting:
            return time.monotonic() - started
        if time.monotonic() - started > PICKUP_TIMEOUT:
            names = ", ".join(p.stem for p in waiting)
            raise DefenceError(f"the defence change was not in force after {PICKUP_TIMEOUT:.0f} s: {names}")
        await asyncio.sleep(0.05)


async def converge(files: ClusterFiles, deploy: Path, wanted: set[str]) -> list[Path]:
    """Make exactly the set's files named `wanted` applied; wait until every node proxy enforces that.

    Returns the files applied or removed; nothing changed means nothing to wait for.
    """
    every = defence_files(deploy)
    unknown = wanted - set(every)
    if unknown:
        raise DefenceError(f"not part of the defence set: {', '.join(sorted(unknown))}")
    now = applied_defence(files, deploy)
    if now == wanted:
        return []
    logs = [files.ztunnel_log(node.name) for node in Topology.load(files.topology).nodes]
    marks = {p: p.stat().st_size if p.exists() else 0 for p in logs}
    changed = delete(files, [every[n] for n in sorted(now - wanted)])
    if wanted - now:
        changed += apply(files, deploy, [every[n] for n in sorted(wanted - now)])
    present = set().union(*(_policy_refs(every[n]) for n in wanted))
    absent = set().union(*(_policy_refs(every[n]) for n in set(every) - wanted))
    await wait_loaded(marks, present, absent)
    return changed


async def set_defence(files: ClusterFiles, deploy: Path, on: bool) -> list[Path]:
    """The whole set on, or none of it (`policies on|off`), in force at every node proxy."""
    return await converge(files, deploy, set(defence_files(deploy)) if on else set())
