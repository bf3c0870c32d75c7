"""`--k8s` on the story's commands (demo, act, reset, ask, evidence ingest): the cluster `k8s up` made.

The context is the one `k8s up` used (recorded in `<state>/k8s/context.json`) unless
`--context` names another; the front doors are the write-up's port-forwards, restarted if
they are down.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trustusbank.cli.k8s_options import K8s, K8sContext
from trustusbank.k8s import forwards
from trustusbank.k8s.lifecycle import workdir_of
from trustusbank.k8s.plan import Options
from trustusbank.paths import deploy_dir, state_dir

if TYPE_CHECKING:  # the story's driver (the scenario, the A2A client) loads only for the story's commands
    from trustusbank.scenario.drivers.kubernetes import KubernetesDriver

__all__ = ["K8s", "K8sContext", "driver", "options", "recorded_context", "remember_context"]


def _record(workdir: Path) -> Path:
    return workdir / "context.json"


def remember_context(workdir: Path, context: str | None) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    _record(workdir).write_text(json.dumps({"context": context}), encoding="utf-8")


def recorded_context(workdir: Path) -> str | None:
    try:
        value = json.loads(_record(workdir).read_text(encoding="utf-8")).get("context")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def options(context: str | None) -> Options:
    workdir = workdir_of(state_dir())
    return Options(deploy_dir(), workdir, context=context or recorded_context(workdir))


def driver(context: str | None, say: Callable[[str], None]) -> KubernetesDriver:
    from trustusbank.scenario.drivers.kubernetes import KubernetesDriver

    chosen = options(context)
    return KubernetesDriver(chosen, forwards.ensure(chosen.workdir, chosen.kube_context), say=say)
