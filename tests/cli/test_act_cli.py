"""`trustusbank act N` plays one act on a running cluster, and says so when there is none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_act_without_a_running_cluster_says_so_and_starts_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "trustusbank", "act", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "no cluster is running" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cluster" / "status.json").exists(), "no cluster was started"
