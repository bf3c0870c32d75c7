"""`trustusbank apply -f` as a user runs it: errors are one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.apply import apply

DEFENCE = DEPLOY / "08-defence"
FILE = "deny-bank-to-attacker.yaml"


def apply_cli(state: Path, source: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(state), "TRUSTUSBANK_PORT_FORWARDS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "trustusbank", "apply", "-f", str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_apply_of_a_missing_file_is_a_clean_error_and_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    missing = tmp_path / "no" / "such" / "file.yaml"

    result = apply_cli(state, missing)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: nothing was applied:",
        f"{missing}: no such file or directory",
    ]
    assert not (state / "cluster").exists()  # refused before the cluster's files were touched


@pytest.mark.parametrize(
    ("cut_after", "why"),
    [("rules:", "rules"), ("# Phase", "holds no objects")],
    ids=["mid-document", "before-any-object"],
)
def test_apply_of_a_policy_cut_short_is_one_clean_error_and_the_set_in_force_stays(
    tmp_path: Path, cut_after: str, why: str
) -> None:
    state = tmp_path / "state"
    files = ClusterFiles(state)
    apply(files, DEPLOY, [DEFENCE])
    before = {p.name: p.read_bytes() for p in files.applied.iterdir()}
    text = (DEFENCE / FILE).read_text()
    garbled = tmp_path / FILE
    garbled.write_text(text[: text.index(cut_after) + len(cut_after) + 12])  # as a killed copy leaves it

    result = apply_cli(state, garbled)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: nothing was applied:")
    assert str(garbled) in result.stderr
    assert why in result.stderr
    assert {p.name: p.read_bytes() for p in files.applied.iterdir()} == before
