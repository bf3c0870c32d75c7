"""Every command imports only what it uses: `--help` and `status` never load the servers' libraries.

Each case runs `python -X importtime -m trustusbank ...` as its own process (a fresh interpreter is
the only honest view of what a command imports) and reads the top-level packages it loaded. The
help screens are listed from the command surface itself (`COMMANDS`, and each group's
subcommands), so a command added there is checked without being named here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import trustusbank
from trustusbank.cli.app import COMMANDS, load

# The MCP SDK, a2a-sdk, the CEL library, cryptography, the HTTP client and the ASGI server stack:
# what the workloads, the mesh and the agents need, and a help screen does not.
HEAVY = frozenset({"mcp", "a2a", "cel", "cryptography", "httpx", "uvicorn", "starlette"})
# Nor does a help screen read a manifest (schemas, YAML), speak HTTP/2, export telemetry or open a
# database: the commands that do load these when they run.
NOT_FOR_HELP = HEAVY | {"jsonschema", "yaml", "h2", "opentelemetry", "prometheus_client", "sqlite3"}


def _subcommands(command: Any, path: list[str]) -> list[list[str]]:
    """`path` and, for a group, every subcommand under it (typer's groups hold theirs in `commands`)."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _subcommands(sub, [*path, name])
    return found


def help_cases() -> list[list[str]]:
    """Every help screen of the surface: the root's, each command's, each group's subcommands'."""
    paths = [path for name in COMMANDS for path in _subcommands(load(name), [name])]
    return [["--help"], *([*path, "--help"] for path in paths), ["version"]]


CASES = help_cases()


def imported_packages(args: list[str], state: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `trustusbank <args>` with `-X importtime`; the top-level names of every module it imported."""
    return run_python(["-m", "trustusbank", *args], state)


def run_python(argv: list[str], state: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    src = str(Path(trustusbank.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
        "TRUSTUSBANK_STATE_DIR": str(state),
        "TRUSTUSBANK_PORT_FORWARDS": "0",
        "COLUMNS": "120",
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    names.discard("imported package")  # the header line
    return done, names


def test_the_cases_reach_every_command_and_every_subcommand() -> None:
    """The list is the surface's: `act`, each command, and the subcommands inside the groups."""
    listed = {" ".join(case) for case in CASES}
    assert {f"{name} --help" for name in COMMANDS} <= listed
    assert {
        "act --help",
        "policies on --help",
        "k8s upgrade-banking-app --help",
        "console serve --help",
    } <= listed
    assert len(CASES) > len(COMMANDS) + 2


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a))
def test_help_imports_none_of_the_heavy_libraries(args: list[str], tmp_path: Path) -> None:
    done, names = imported_packages(args, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "typer" in names
    assert "trustusbank" in names
    unused = names & NOT_FOR_HELP
    assert not unused, f"`trustusbank {' '.join(args)}` imported {sorted(unused)}"


def test_status_without_a_cluster_imports_none_of_them(tmp_path: Path) -> None:
    done, names = imported_packages(["status"], tmp_path)
    assert done.returncode == 1
    assert "no cluster is running" in done.stderr
    assert "trustusbank" in names
    assert not names & HEAVY, sorted(names & HEAVY)


def test_the_import_log_names_a_heavy_library_when_one_is_imported(tmp_path: Path) -> None:
    """The check can fail: the same reading of the same log sees the libraries when they do load."""
    done, names = run_python(
        ["-c", "import trustusbank.cli.app, mcp, a2a.client, cel, httpx, jsonschema, yaml, sqlite3"], tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert {"mcp", "a2a", "cel", "httpx", "jsonschema", "yaml", "sqlite3", "typer", "trustusbank"} <= names
