"""Each isolated pod's environment as the runtime gave it, for `exec` to run commands with.

A pod started as a fresh interpreter has it at /proc/<pid>/environ; a pod forked from the
zygote does not (that shows the environment the zygote was exec'd with: a fork changes the
variables, not the memory the kernel reads them from). So the supervisor writes what each
pod is given here, under the cluster's state, which no pod's root filesystem shows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from trustusbank.cluster.layout import ClusterFiles


def env_file(files: ClusterFiles, namespace: str, name: str) -> Path:
    return files.root / "podenv" / f"{namespace}_{name}.json"


def write(files: ClusterFiles, namespace: str, name: str, env: dict[str, str]) -> None:
    path = env_file(files, namespace, name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold the pod's secrets
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(env, out)
    tmp.replace(path)


def read(files: ClusterFiles, namespace: str, name: str) -> dict[str, str] | None:
    try:
        found = json.loads(env_file(files, namespace, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None
