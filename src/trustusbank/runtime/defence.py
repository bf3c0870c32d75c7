"""The defence set (deploy/08-defence) on the running cluster: which of it is on, change that, and wait.

`policies on|off`, the acts and the follow-on demos all change the same thing, so they
share one definition of "on" (every file of the set applied) and one wait: a change is
in force when every node proxy has logged a policy set holding exactly the set's
policies that should be there, not after a guessed pause. A node proxy that cannot read
the new set keeps the last good one and says so; that ends the wait with an error rather
than a silent pass.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from trustusbank.cluster.layout import DEFENCE_DIR, ClusterFiles
from trustusbank.cluster.topology import Topology
from trustusbank.errors import OperationError
from trustusbank.manifests.yaml_source import read_documents, yaml_files
from trustusbank.mesh.ztunnel import policy_store
from trustusbank.runtime.apply import applied, apply, delete

# Only the policy store's own lines: an access-log line may quote its error.
LOADED = f"{policy_store.log.name}: {policy_store.LOADED}"
UNREADABLE = f"{policy_store.log.name}: {policy_store.UNREADABLE}"
PICKUP_TIMEOUT = 15.0


class DefenceError(OperationError, RuntimeError):
    """A policy change (the defence set, or any applied file) did not come into force on every node proxy."""


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


def _last_load(log: Path, offset: int) -> str | None:
    """The node proxy's last reload line after byte `offset` (a loaded set or an unreadable one)."""
    if not log.exists():
        return None
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if LOADED in line or UNREADABLE in line]
    return lines[-1] if lines else None


def _refs(line: str) -> set[str]:
    return {ref.strip() for ref in line.split(LOADED, 1)[1].split(",")}


async def wait_loaded(marks: dict[Path, int], present: set[str], absent: set[str]) -> float:
    """Seconds until every node log in `marks` shows a load holding `present` and none of `absent`.

    A node that logs an unreadable set meanwhile is still waited for (it keeps its last good set,
    or denies everything if it has none, until its next reload); if that is where it stays, the
    timeout says so.
    """
    started = time.monotonic()
    waiting = dict(marks)
    last: dict[Path, str | None] = {}
    while True:
        for log, offset in list(waiting.items()):
            line = last[log] = _last_load(log, offset)
            if line is not None and LOADED in line and present <= _refs(line) and not absent & _refs(line):
                del waiting[log]
        if not waiting:
            return time.monotonic() - started
        if time.monotonic() - started > PICKUP_TIMEOUT:
            unreadable = "could not read the policy set"
            stuck = "; ".join(
                f"{p.stem}: {unreadable if UNREADABLE in (last.get(p) or '') else 'no matching reload'}"
                for p in waiting
            )
            raise DefenceError(f"the policy change was not in force after {PICKUP_TIMEOUT:.0f} s ({stuck})")
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
