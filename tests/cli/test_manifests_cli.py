"""`manifests check`: a summary per kind, every problem as file:line, and an exit code CI can use."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.paths import FIXTURES
from trustusbank.cli.manifests_cmd import app
from trustusbank.paths import DEPLOY_ENV

VALID = FIXTURES / "manifests" / "valid"

runner = CliRunner()


def test_clean_bundle_summarises_kinds_and_exits_0() -> None:
    result = runner.invoke(app, ["check", str(VALID)])

    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert ["Deployment", "2"] in lines
    assert ["Namespace", "2"] in lines
    assert ["ConfigMap", "1"] in lines
    assert "no problems" in result.output


def test_problems_are_listed_relative_to_cwd_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "deploy"
    shutil.copytree(VALID, bundle)
    shop = bundle / "10-shop" / "shop.yaml"
    shop.write_text(shop.read_text().replace("command:", "comand:"))
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app, ["check", str(bundle)])

    assert result.exit_code == 1
    assert (
        "deploy/10-shop/shop.yaml:38: Deployment shop-api: spec.template.spec.containers[0].comand: "
        "unknown field (did you mean 'command'?)"
    ) in result.output.splitlines()
    assert "deploy/10-shop/shop.yaml:60: Service shop/shop-api: selector" in result.output
    assert "2 problems" in result.output


def test_default_path_comes_from_deploy_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEPLOY_ENV, str(VALID))

    result = runner.invoke(app, ["check"])

    assert result.exit_code == 0, result.output
    assert "7 objects" in result.output


def test_missing_path_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nowhere")])

    assert result.exit_code == 1
    assert "nowhere: no such file or directory" in result.output
