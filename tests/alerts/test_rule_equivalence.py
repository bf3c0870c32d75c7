"""The embedded evaluator on promtool's own test files: one set of series, both engines agree.

Each file under promtool/ is also run by the real promtool (test_promtool.py); here the
same expectations are checked against our PromQL engine and alert lifecycle, with the
rules read from the same PrometheusRule manifest.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from tests.alerts.helpers import FIXTURES, RULES, deploy_rule, prepare_workdir
from trustusbank.alerts.rule_tests import RuleTestError, expand_values, load_groups, run_file
from trustusbank.manifests.kinds import KINDS
from trustusbank.manifests.prometheus import API_VERSION, KIND, check_prometheus_rule

FILES = sorted(FIXTURES.glob("*.test.yaml"))
RULE_KIND = (API_VERSION, KIND)


@pytest.mark.parametrize("test_file", FILES, ids=[f.stem for f in FILES])
def test_embedded_engine_meets_the_promtool_expectations(test_file: Path, tmp_path: Path) -> None:
    """The very files test_promtool.py hands to promtool, each with its own `rule_files`."""
    failures = run_file(prepare_workdir(tmp_path) / test_file.name)
    assert not failures, "\n".join(map(str, failures))


def test_the_rule_file_is_the_manifest() -> None:
    """`rules.yaml` (what promtool reads) is the PrometheusRule's spec, expression for expression."""
    from_manifest = [r.expr_text for g in load_groups(RULES) for r in g.rules]
    assert from_manifest == [r["expr"] for g in deploy_rule().rule_file()["groups"] for r in g["rules"]]
    assert len(from_manifest) == 4


def test_the_naive_rule_fails_here_too(tmp_path: Path) -> None:
    """Without the born-in-window branch, Act 2's first exfil attempt would never alert."""
    rule = deploy_rule().rule_file()
    for group in rule["groups"]:
        for r in group["rules"]:
            r["expr"] = r["expr"].replace(
                "unless trustusbank_outbound_attempts_total offset 5m", 'and {x="1"}'
            )
    naive = tmp_path / "naive.yaml"
    naive.write_text(yaml.safe_dump(rule))
    failures = run_file(FIXTURES / "bank-to-attacker.test.yaml", [naive])
    assert [(f.alertname, f.eval_time) for f in failures][:2] == [
        ("BankToAttackerAttempt", 180.0),
        ("BankToAttackerAttempt", 300.0),
    ]


def test_a_drift_rule_blind_to_the_first_drift_fails_here_too(tmp_path: Path) -> None:
    """Without the born-in-window branch, a rug pull's first drifted listing would never alert."""
    rule = deploy_rule().rule_file()
    for group in rule["groups"]:
        for r in group["rules"]:
            r["expr"] = r["expr"].replace("unless trustusbank_mcp_guard_drift_total offset 5m", 'and {x="1"}')
    naive = tmp_path / "naive.yaml"
    naive.write_text(yaml.safe_dump(rule))
    failures = run_file(FIXTURES / "mcp-drift.test.yaml", [naive])
    assert [(f.alertname, f.eval_time) for f in failures] == [
        ("McpToolDrift", 120.0),
        ("McpToolDrift", 240.0),
        ("McpToolDrift", 480.0),
    ]


MARKER = "unless on(job, instance) last_over_time(trustusbank_ztunnel_info[5m])"


@pytest.mark.parametrize(
    ("marker", "fixture", "first_failure"),
    [
        ("", "bank-to-attacker.test.yaml", ("BankToAttackerAttempt", 180.0)),
        (
            "unless on(job, instance) trustusbank_ztunnel_info",
            "authz-deny.test.yaml",
            ("IstioAuthZDeny", 600.0),
        ),
    ],
    ids=["no-marker", "instant-marker"],
)
def test_a_rule_that_alerts_twice_fails_here_too(
    tmp_path: Path, marker: str, fixture: str, first_failure: tuple[str, float]
) -> None:
    """The embedded ztunnel's Istio series must not alert beside its own counters, even while
    a node is down (its last samples still in the window)."""
    rule = deploy_rule().rule_file()
    for group in rule["groups"]:
        for r in group["rules"]:
            r["expr"] = r["expr"].replace(MARKER, marker)
    variant = tmp_path / "variant.yaml"
    variant.write_text(yaml.safe_dump(rule))
    failures = run_file(FIXTURES / fixture, [variant])
    assert failures
    assert (failures[0].alertname, failures[0].eval_time) == first_failure
    assert len(failures[0].got) == len(failures[0].expected) + 1  # the same event, twice


def test_series_notation() -> None:
    assert expand_values("1+2x3 _ stale 4 -1-1x1")[:4] == [1.0, 3.0, 5.0, 7.0]
    missing, stale, *rest = expand_values("_ stale 4 -1-1x1")
    assert missing is None
    assert stale is not None
    assert math.isnan(stale)
    assert rest == [4.0, -1.0, -2.0]
    with pytest.raises(RuleTestError):
        expand_values("1x3")


def _rule(expr: str, **extra: object) -> dict[str, object]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "r", "namespace": "trustusbank-observability"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": expr, **extra}]}]},
    }


@pytest.mark.parametrize(
    ("expr", "extra", "message"),
    [
        ("rate(x[5m]) * 60 > 1", {}, "arithmetic operator '*' is not supported"),
        ("histogram_quantile(0.9, x)", {}, "function 'histogram_quantile' is not supported"),
        ("x > 0", {"for": "5 minutes"}, "does not match"),
        ("x > 0", {"annotations": {"summary": "{{ humanize $value }}"}}, "only {{ $labels.<name> }}"),
        ("x > 0", {"labels": {"alertname": "B"}}, "not a label name a rule may set"),
    ],
)
def test_rules_the_evaluator_cannot_honour_are_errors(
    expr: str, extra: dict[str, object], message: str
) -> None:
    errors = KINDS[RULE_KIND].validate(_rule(expr, **extra))
    assert any(message in text for _, text in errors), errors


def test_unknown_fields_and_two_kinds_of_rule_are_refused() -> None:
    body = _rule("x > 0", keep_firing_for="5m")
    assert any("unknown field" in text for _, text in KINDS[RULE_KIND].validate(body))
    both = _rule("x > 0", record="x:sum")
    assert check_prometheus_rule(both) == [
        (("spec", "groups", 0, "rules", 0), "a rule has exactly one of alert or record")
    ]
