"""One exception tree: every error trustusbank defines is a `TrustusbankError`, and the CLI reports it."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import os
import pkgutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import trustusbank
from trustusbank import errors
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.errors import TrustusbankError

BRANCHES = (
    errors.ConfigError,
    errors.ProtocolError,
    errors.RefusedError,
    errors.UnavailableError,
    errors.IntegrityError,
    errors.OperationError,
)


def defined_errors() -> dict[str, type[BaseException]]:
    """Every public exception class defined in a trustusbank module, by qualified name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(trustusbank.__path__, "trustusbank."):
        if info.name.rpartition(".")[2] == "__main__":
            continue  # importing it runs the command line
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


@pytest.fixture(scope="module")
def project_errors() -> dict[str, type[BaseException]]:
    found = defined_errors()
    names = {qualified.rpartition(".")[2] for qualified in found}
    # the walk reaches every layer, not just the top package
    assert {"ManifestError", "ChainBroken", "HboneError", "ActError", "PodSpecError"} <= names
    return found


def test_every_error_class_is_a_trustusbank_error(project_errors: dict[str, type[BaseException]]) -> None:
    unrooted = sorted(name for name, cls in project_errors.items() if not issubclass(cls, TrustusbankError))
    assert unrooted == [], "re-root these under a branch of trustusbank.errors"


def test_every_error_outside_errors_py_is_under_a_branch(
    project_errors: dict[str, type[BaseException]],
) -> None:
    bare = sorted(
        name
        for name, cls in project_errors.items()
        if cls.__module__ != errors.__name__ and not issubclass(cls, BRANCHES)
    )
    assert bare == [], "a concrete error says what kind of trouble it is: pick a branch"


def test_errors_py_imports_nothing_from_trustusbank() -> None:
    tree = ast.parse(Path(inspect.getfile(errors)).read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert [name for name in imported if name.split(".")[0] == "trustusbank"] == []


def run_cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(state_dir), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "trustusbank", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unavailable_cluster_state_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustusbank.evidence import ingest
    from trustusbank.paths import state_dir

    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(tmp_path))
    with pytest.raises(TrustusbankError) as raised:
        ingest(ClusterFiles(state_dir()))
    assert isinstance(raised.value, errors.UnavailableError)

    done = run_cli("evidence", "ingest", state_dir=tmp_path)
    assert done.returncode == 1
    assert done.stderr == f"error: {raised.value}\n"
    assert done.stdout == ""


def test_a_question_nobody_answers_is_one_line_and_exit_1(tmp_path: Path) -> None:
    from trustusbank.workloads.chatbot.client import ask
    from trustusbank.workloads.chatbot.names import DEFAULT_AGENT

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        chatbot = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(TrustusbankError) as raised:
        asyncio.run(ask("hi", chatbot=chatbot, agent=DEFAULT_AGENT, wait=10))

    done = run_cli("ask", "hi", "--chatbot", chatbot, state_dir=tmp_path)
    assert done.returncode == 1
    assert done.stderr == f"error: {raised.value}\n"
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
