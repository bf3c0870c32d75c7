"""Where things live on disk: the state directory and the manifest bundle.

Everything a run writes (databases, certificates, logs) goes under one state
directory so that two states never collide; `TRUSTUSBANK_STATE_DIR` selects it.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

from trustusbank.env import DEPLOY_DIR, LOGS_DIR, POD_IP, STATE_DIR, TOPOLOGY, TRACES_DIR

# The names of the settings about where things are, as they were known here before env.py
# (which says what each means); new code uses env.STATE_DIR.name and friends.
STATE_ENV = STATE_DIR.name
DEPLOY_ENV = DEPLOY_DIR.name
POD_IP_ENV = POD_IP.name
TRACES_ENV = TRACES_DIR.name
TOPOLOGY_ENV = TOPOLOGY.name
LOGS_ENV = LOGS_DIR.name

_REPO_ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """The state directory, created on first use."""
    configured = STATE_DIR.read()
    path = configured if configured is not None else Path(platformdirs.user_state_dir("trustusbank"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_file(name: str) -> Path:
    """A workload's default database file, under the state directory."""
    path = state_dir() / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def deploy_dir() -> Path:
    """The manifest bundle: `TRUSTUSBANK_DEPLOY_DIR`, else `./deploy`, else the checkout's."""
    configured = DEPLOY_DIR.read()
    if configured is not None:
        return configured
    local = Path.cwd() / "deploy"
    if local.is_dir():
        return local
    return _REPO_ROOT / "deploy"
