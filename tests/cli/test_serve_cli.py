"""`trustusbank serve` fails with one clear line, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def run_serve(*args: str, state_dir) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(state_dir), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "trustusbank", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_port_in_use_names_the_port(state_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_serve("account-mcp", "--port", str(port), state_dir=state_dir)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: port {port} on 127.0.0.1 is already in use"


def test_unknown_workload_and_build(state_dir):
    unknown = run_serve("bitcoin-miner", state_dir=state_dir)
    assert unknown.returncode == 2
    assert "unknown workload 'bitcoin-miner'; choose one of: account-mcp," in unknown.stderr
    bad_build = run_serve("currency-converter", "--variant", "evil", state_dir=state_dir)
    assert bad_build.returncode == 2
    assert "no build 'evil'; choose one of: clean, mock-rugpull, real-rugpull" in bad_build.stderr
