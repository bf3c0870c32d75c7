"""What a follow-on demo needs of the cluster, set up before it runs and put back afterwards.

A follow-on demo runs on whatever the last command left: after `demo` the defence set is
on and the rug-pulled converter runs, after `reset` neither is. A demo that needs one of
them declares it (`NEEDS` in its module); `prepared` makes it so, says what it changed in
the demo's own output, and restores exactly what it found, whatever happened in between.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from trustusbank.runtime import control
from trustusbank.runtime.defence import applied_defence, converge, defence_files, defence_state
from trustusbank.scenario.cluster import Cluster, Progress


@dataclass(frozen=True)
class Needs:
    """None: the demo works either way and leaves it as it is."""

    defence: bool | None = None


ANY = Needs()


@dataclass
class SetUp:
    """What `prepared` did, for the demo's output: lines to print before and after it, and --json data."""

    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def prepared(cluster: Cluster, needs: Needs, progress: Progress) -> AsyncIterator[SetUp]:
    done = SetUp()
    if needs.defence is None:
        yield done
        return
    files, deploy = cluster.files, control.deploy_of(cluster.files)
    found, state = applied_defence(files, deploy), defence_state(files, deploy)
    wanted = "on" if needs.defence else "off"
    done.data["defence"] = {"was": state, "needed": wanted, "changed": state != wanted}
    if state == wanted:
        yield done
        return
    progress(f"setting up: the defence set {wanted} (it is {state})")
    await converge(files, deploy, set(defence_files(deploy)) if needs.defence else set())
    done.before.append(
        f"[bold]set up[/]: the defence set {wanted} for this demo (it was {state}); put back afterwards"
    )
    try:
        yield done
    finally:
        progress(f"putting the defence set back ({state})")
        await converge(files, deploy, found)
        done.after.append(f"[bold]put back[/]: the defence set is {state} again")
