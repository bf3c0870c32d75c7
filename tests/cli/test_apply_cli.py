"""`trustusbank apply -f` as a user runs it: errors are one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_apply_of_a_missing_file_is_a_clean_error_and_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(state), "TRUSTUSBANK_PORT_FORWARDS": "0"}
    missing = tmp_path / "no" / "such" / "file.yaml"

    result = subprocess.run(
        [sys.executable, "-m", "trustusbank", "apply", "-f", str(missing)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: nothing was applied:",
        f"{missing}: no such file or directory",
    ]
    assert not (state / "cluster").exists()  # refused before the cluster's files were touched
