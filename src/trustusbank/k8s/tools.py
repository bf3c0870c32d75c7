"""The command-line tools Kubernetes mode drives, and how to get each one.

Checked before any step runs, so a missing tool is one line naming it and where to get it,
not a half-installed cluster.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable

from trustusbank.errors import ConfigError

WHERE = {
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/#kubectl",
    "helm": "https://helm.sh/docs/intro/install/",
    "docker": "https://docs.docker.com/engine/install/ (or podman: https://podman.io/docs/installation)",
}


class ToolMissing(ConfigError, RuntimeError):
    """A tool a step needs is not on PATH."""


def missing(names: Iterable[str]) -> list[str]:
    return [name for name in dict.fromkeys(names) if shutil.which(name) is None]


def require(names: Iterable[str]) -> None:
    gone = missing(names)
    if gone:
        raise ToolMissing(
            "; ".join(
                f"{name} is missing: install it from {WHERE.get(name, 'its project page')}" for name in gone
            )
        )
