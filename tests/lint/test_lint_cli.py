"""`policy lint` as a command: output shapes and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.lint import DEPLOY, fixture, line_of
from trustusbank.cli.lint_cmd import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["lint", *args])
    return result.exit_code, result.output


def test_deploy_passes() -> None:
    code, output = run(str(DEPLOY))

    # The info: who enforces each of the 4 AccessPolicies; the warnings: the 2 UserGroup subjects
    # kagent OSS cannot enforce (tests/lint/test_lint_kagent_oss.py).
    assert (code, output.strip().splitlines()[-1]) == (0, "0 errors, 2 warnings, 4 info")


def test_path_defaults_to_the_deploy_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "p.yaml").write_text(fixture("istio-deny-l7-only.yaml").read_text())
    monkeypatch.setenv("TRUSTUSBANK_DEPLOY_DIR", str(bundle))

    code, output = run()

    assert code == 1
    assert f"{bundle / 'p.yaml'}:" in output


def test_human_output_is_grouped_by_file_with_the_cluster_effect_indented() -> None:
    path = fixture("seed-deny-vendor-to-attacker.yaml")

    code, output = run(str(path))

    lines = output.splitlines()
    assert code == 1
    assert lines[0] == str(path)
    assert lines[1].startswith(
        f"{path}:{line_of(path, 'hosts:')}: error: trustusbank-bank-vendors/deny-vendor-to-attacker rule 0: "
        "this DENY selects app=currency-converter as the *destination*"
    )
    assert lines[2].startswith(
        "    on a real cluster: istiod reports: ztunnel does not support HTTP attributes"
    )
    assert lines[-1] == "1 error, 0 warnings"


def test_warnings_do_not_fail_unless_strict() -> None:
    path = str(fixture("istio-target-without-waypoint.yaml"))

    assert run(path)[0] == 0
    assert run(path, "--strict")[0] == 1


def test_a_policy_in_a_namespace_outside_ambient_fails_the_lint() -> None:
    # Nothing enforces it, as with a DENY that blocks nothing: exit 1 without --strict.
    code, output = run(str(fixture("istio-namespace-not-ambient.yaml")))

    assert (code, output.strip().splitlines()[-1]) == (1, "1 error, 0 warnings")


def test_json_output_for_machines() -> None:
    path = fixture("agw-mcp-in-traffic.yaml")

    code, output = run(str(path), "--format", "json")

    document = json.loads(output)
    assert code == 1
    assert document["summary"] == {"errors": 2, "warnings": 0, "info": 0}
    assert document["findings"][1] == {
        "file": str(path),
        "line": line_of(path, "mcp.tool.name"),
        "severity": "error",
        "code": "agw-mcp-in-traffic",
        "kind": "AgentgatewayPolicy",
        "policy": "trustusbank-platform/ticket-tools",
        "rule": 0,
        "message": document["findings"][1]["message"],
        "on_cluster": document["findings"][1]["on_cluster"],
    }
    assert "sees no MCP" in document["findings"][1]["message"]


def test_a_folder_of_every_mistake_is_linted_leniently() -> None:
    # One folder holding every fixture, YAML the strict loader partly refuses: all are read.
    code, output = run(str(fixture("")), "--format", "json")

    document = json.loads(output)
    files = {Path(f["file"]).name for f in document["findings"]}
    assert code == 1
    assert files == {p.name for p in fixture("").glob("*.yaml")}


def test_loader_problems_are_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  portz: []\n")

    code, output = run(str(broken), "--format", "json")

    [finding] = json.loads(output)["findings"]
    assert code == 1
    assert (finding["severity"], finding["code"], finding["line"]) == ("error", "manifest-invalid", 6)
    assert "unknown field" in finding["message"]


def test_yaml_syntax_errors_are_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: [Service\n")

    code, output = run(str(broken))

    assert code == 1
    assert "YAML syntax error" in output


def test_missing_path_exits_2(tmp_path: Path) -> None:
    code, output = run(str(tmp_path / "nope"))

    assert code == 2
    assert "no such file or directory" in output
