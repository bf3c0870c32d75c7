"""Everything `k8s up` applies validates: deploy/ as rendered for a cluster, OSS and Enterprise.

Built-in kinds against Kubernetes' strict schemas, custom resources against the project's
(`k8s.schemas`); and what was left out of deploy/ is only what the render says it leaves out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.paths import DEPLOY
from trustusbank.k8s import schemas, versions
from trustusbank.k8s.plan import Options, install_plan
from trustusbank.k8s.render import render, render_defence


@pytest.mark.parametrize("enterprise", [False, True], ids=["oss", "enterprise"])
def test_every_rendered_file_validates(tmp_path: Path, enterprise: bool) -> None:
    licence = tmp_path / "licence.key"
    licence.write_text("not-a-real-key\n")
    plan = install_plan(
        Options(DEPLOY, tmp_path / "k8s", kind=True, license_file=licence if enterprise else None)
    )
    rendered = [path for path in plan.files if path.parent.name == "rendered"]
    assert len(rendered) >= 8
    for path, text in plan.files.items():
        if path in rendered:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            assert schemas.validate_path(path) == [], path.name


def test_oss_and_enterprise_differ_only_where_the_render_says() -> None:
    oss = {p.name: p for p in render(DEPLOY)}
    enterprise = {p.name: p for p in render(DEPLOY, enterprise=True)}
    assert oss.keys() == enterprise.keys()
    [gateway] = [d for d in oss["06-agentgateway"].documents if d["kind"] == "Gateway"]
    [licensed] = [d for d in enterprise["06-agentgateway"].documents if d["kind"] == "Gateway"]
    assert gateway["spec"]["gatewayClassName"] == versions.AGENTGATEWAY_OSS_CLASS
    assert licensed["spec"]["gatewayClassName"] == versions.AGENTGATEWAY_ENTERPRISE_CLASS
    kinds = {d["kind"] for d in enterprise["07-agents"].documents}
    assert "AccessPolicy" in kinds
    assert "AccessPolicy" not in {d["kind"] for d in oss["07-agents"].documents}
    assert all("08-defence" not in name for name in oss)


def test_the_licence_key_is_in_a_file_never_in_a_command(tmp_path: Path) -> None:
    licence = tmp_path / "licence.key"
    licence.write_text("secret-key-123\n")
    plan = install_plan(Options(DEPLOY, tmp_path / "k8s", license_file=licence))
    argv = " ".join(" ".join(c.argv) for step in plan.steps for c in step.commands)
    assert "secret-key-123" not in argv
    [values] = [text for path, text in plan.files.items() if "licence" in path.name]
    assert "secret-key-123" in values
    assert "kagent-enterprise" in argv
    assert "enterprise-agentgateway" in argv


def test_the_observability_values_are_what_the_charts_are_given(tmp_path: Path) -> None:
    """Loki as one binary on filesystem storage (its other modes need object storage), Grafana loading
    dashboards labelled grafana_dashboard=1, Alertmanager mailing the SOC through mailpit."""
    plan = install_plan(Options(DEPLOY, tmp_path / "k8s"))
    by_name = {
        path.name: yaml.safe_load(text) for path, text in plan.files.items() if ".values." in path.name
    }
    loki = by_name["loki.values.yaml"]
    assert (loki["deploymentMode"], loki["loki"]["storage"]["type"]) == ("SingleBinary", "filesystem")
    assert loki["loki"]["commonConfig"]["replication_factor"] == 1
    stack = by_name["kube-prometheus-stack.values.yaml"]
    assert stack["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    assert stack["alertmanager"]["config"]["global"]["smtp_smarthost"].startswith("mailpit-smtp.")
    assert stack["prometheus"]["prometheusSpec"]["ruleSelectorNilUsesHelmValues"] is False
    argv = [list(c.argv) for step in plan.steps for c in step.commands if "loki" in c.argv]
    assert argv[0][argv[0].index("--values") + 1] == str(tmp_path / "k8s" / "loki.values.yaml")


def test_the_defence_set_for_a_cluster_names_who_does_the_stand_ins_job(tmp_path: Path) -> None:
    """The embedded alert evaluator scrapes the agents; on a cluster Prometheus does, so the ALLOW
    names Prometheus; the observability namespace's own policies describe the embedded stand-ins'
    traffic, not kube-prometheus-stack's, and are left out, said."""
    phase = render_defence(DEPLOY)
    text = phase.text()
    assert "sa/alert-evaluator" not in text
    scrape = next(d for d in phase.documents if d["metadata"]["name"] == "allow-metrics-scrape")
    assert scrape["spec"]["rules"][0]["from"][0]["source"]["principals"] == [
        "cluster.local/ns/trustusbank-observability/sa/kube-prometheus-stack-prometheus"
    ]
    assert all(d["metadata"]["namespace"] != "trustusbank-observability" for d in phase.documents)
    assert sorted(item.split(":")[0] for item in phase.left_out) == [
        "AuthorizationPolicy trustusbank-observability/allow-alert-mail",
        "AuthorizationPolicy trustusbank-observability/default-deny",
    ]
    embedded = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in phase.documents}
    assert ("external-attacker", "deny-bank-to-attacker") in embedded
    (tmp_path / "08-defence.yaml").write_text(text)
    assert schemas.validate_path(tmp_path / "08-defence.yaml") == []
