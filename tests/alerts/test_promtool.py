"""The shipped PrometheusRule under the real Prometheus tooling: `promtool check rules` and `test rules`.

promtool comes from the Debian package `prometheus` (`.ci/run` installs it). Without it
these tests skip on a developer machine, and fail in CI (CI=true), where a missing
promtool would otherwise let broken PromQL through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.alerts.helpers import deploy_rule, prepare_workdir


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool is missing in CI: install the Debian package `prometheus` (see .ci/run)")
        pytest.skip("promtool not installed (Debian package `prometheus`); CI=true makes this a failure")
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return prepare_workdir(tmp_path)


def run(promtool: str, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=workdir, capture_output=True, text=True, timeout=60)


MARKER = "unless on(job, instance) last_over_time(trustusbank_ztunnel_info[5m])"


def test_promtool_accepts_the_rules(promtool: str, workdir: Path) -> None:
    result = run(promtool, workdir, "check", "rules", "rules.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool: str, workdir: Path) -> None:
    files = sorted(p.name for p in workdir.glob("*.test.yaml"))
    assert {
        "authz-deny.test.yaml",
        "bank-to-attacker.test.yaml",
        "kagent-deny.test.yaml",
        "mcp-drift.test.yaml",
    } <= set(files)
    assert "lifecycle.test.yaml" in files
    result = run(promtool, workdir, "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_promtool_catches_the_naive_rule(promtool: str, workdir: Path) -> None:
    """`increase(...) > 0` alone misses a counter born at its first event: the fixtures must say so."""
    rule = deploy_rule().rule_file()
    for group in rule["groups"]:
        for r in group["rules"]:
            if r["alert"] == "BankToAttackerAttempt":
                r["expr"] = r["expr"].replace(
                    "unless trustusbank_outbound_attempts_total offset 5m", "unless on() vector(1)"
                )
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rule, sort_keys=False))
    result = run(promtool, workdir, "test", "rules", "bank-to-attacker.test.yaml")
    assert result.returncode != 0
    assert "BankToAttackerAttempt, time: 3m" in result.stdout + result.stderr


def test_promtool_catches_a_drift_rule_blind_to_the_first_drift(promtool: str, workdir: Path) -> None:
    """The guard's drift counter is born at 1 on a rug pull's first listing: `increase` alone misses it."""
    rule = deploy_rule().rule_file()
    for group in rule["groups"]:
        for r in group["rules"]:
            r["expr"] = r["expr"].replace(
                "unless trustusbank_mcp_guard_drift_total offset 5m", "unless on() vector(1)"
            )
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rule, sort_keys=False))
    result = run(promtool, workdir, "test", "rules", "mcp-drift.test.yaml")
    assert result.returncode != 0
    assert "McpToolDrift, time: 2m" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("marker", "fixture", "failure"),
    [
        # Without the marker, the embedded ztunnel's Istio series alert a second time.
        ("", "bank-to-attacker.test.yaml", "BankToAttackerAttempt, time: 3m"),
        # With the marker's instant value, a node that went down alerts twice while its
        # refusals are still in the window.
        (
            "unless on(job, instance) trustusbank_ztunnel_info",
            "authz-deny.test.yaml",
            "IstioAuthZDeny, time: 10m",
        ),
    ],
    ids=["no-marker", "instant-marker"],
)
def test_promtool_catches_a_rule_that_alerts_twice(
    promtool: str, workdir: Path, marker: str, fixture: str, failure: str
) -> None:
    rule = deploy_rule().rule_file()
    for group in rule["groups"]:
        for r in group["rules"]:
            r["expr"] = r["expr"].replace(MARKER, marker)
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rule, sort_keys=False))
    result = run(promtool, workdir, "test", "rules", fixture)
    assert result.returncode != 0
    assert failure in result.stdout + result.stderr
