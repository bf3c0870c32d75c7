"""Where things live on disk: the state directory and the manifest bundle.

Everything a run writes (databases, certificates, logs) goes under one state
directory so that two states never collide; `TRUSTUSBANK_STATE_DIR` selects it.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

STATE_ENV = "TRUSTUSBANK_STATE_DIR"
DEPLOY_ENV = "TRUSTUSBANK_DEPLOY_DIR"
# Set by the embedded runtime: the pod's private address, what "0.0.0.0" means inside the pod.
POD_IP_ENV = "TRUSTUSBANK_POD_IP"
# Set by the embedded runtime: where components write their spans, and the cluster's topology
# (which pod has which address and ServiceAccount).
TRACES_ENV = "TRUSTUSBANK_TRACES_DIR"
TOPOLOGY_ENV = "TRUSTUSBANK_TOPOLOGY"
# Set by the embedded runtime: where components write decision logs the evidence trail reads.
LOGS_ENV = "TRUSTUSBANK_LOGS_DIR"

_REPO_ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """The state directory, created on first use."""
    raw = os.environ.get(STATE_ENV)
    path = Path(raw).expanduser() if raw else Path(platformdirs.user_state_dir("trustusbank"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_file(name: str) -> Path:
    """A workload's default database file, under the state directory."""
    path = state_dir() / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def deploy_dir() -> Path:
    """The manifest bundle: `TRUSTUSBANK_DEPLOY_DIR`, else `./deploy`, else the checkout's."""
    raw = os.environ.get(DEPLOY_ENV)
    if raw:
        return Path(raw).expanduser()
    local = Path.cwd() / "deploy"
    if local.is_dir():
        return local
    return _REPO_ROOT / "deploy"
