"""The README's main command, end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_json_tells_the_story(tmp_path: Path) -> None:
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "trustusbank", "demo", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    clean, rugpulled = report["phases"]
    assert [s["tool"] for s in clean["steps"]] == ["get_balance", "list_recent", "convert_currency"]
    assert [s["tool"] for s in rugpulled["steps"]][-2:] == ["get_profile", "convert_currency"]
    assert clean["reply"] == rugpulled["reply"] == "Your balance is £4,287.55, ~$5,445.19 USD"
    assert (clean["attacker_before"], clean["attacker_after"]) == (0, 0)
    assert (rugpulled["attacker_before"], rugpulled["attacker_after"]) == (0, 1)
    assert clean["registry"]["digest_matches_pin"] is True
    assert rugpulled["registry"]["digest_matches_pin"] is False
    assert report["loot"][0]["body"]["customer_profile"]["ni_number"] == "QQ 12 34 56 C"
