"""`trustusbank open`: the tabs and what to watch; `open <tab>` opens this cluster's address."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trustusbank.cli.app import app


def test_without_a_cluster_the_seed_addresses_are_listed_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["open"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "no cluster is running" in result.stderr
    assert "8. Agent registry: the converter's entry" in result.stdout
    assert "http://127.0.0.1:18001/d/dora-evidence (not served by this cluster)" in result.stdout
    assert "Act 3" in result.stdout


def test_open_one_tab_hands_its_address_to_the_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(tmp_path))
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    result = CliRunner().invoke(app, ["open", "alerts"])
    assert result.exit_code == 0, result.output
    assert opened == ["http://127.0.0.1:18002/alerts"]
    wrong = CliRunner().invoke(app, ["open", "grafana"])
    assert wrong.exit_code == 2
    assert "choose one of: chatbot, attacker" in wrong.output
