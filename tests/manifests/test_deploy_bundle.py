"""deploy/ is the single description of the system: it must check clean and say the seed's facts."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from tests.paths import DEPLOY
from trustusbank.cli.app import app
from trustusbank.manifests.bundle import load_bundle

SERVICES = {
    ("trustusbank-bank-mcp", "account-mcp"): 8000,
    ("trustusbank-bank-mcp", "transaction-mcp"): 8000,
    ("trustusbank-bank-mcp", "ticket-mcp"): 8000,
    ("trustusbank-bank-vendors", "currency-converter"): 8000,
    ("external-attacker", "mock-attacker"): 8080,
    ("trustusbank-platform", "agentregistry"): 8080,
    ("trustusbank-platform", "mcp-guard"): 8080,
    ("external-fx", "fx-api"): 8080,
    ("trustusbank-bank-agents", "scripted-model"): 8080,
    ("trustusbank-bank-frontend", "chatbot"): 80,
    ("trustusbank-observability", "soc-inbox"): 8080,
    ("trustusbank-observability", "alert-evaluator"): 8080,
}


def test_manifests_check_passes_on_deploy() -> None:
    result = CliRunner().invoke(app, ["manifests", "check", str(DEPLOY)])
    assert result.exit_code == 0, result.output
    assert "no problems" in result.output


def test_seed_topology() -> None:
    bundle = load_bundle(DEPLOY)
    namespaces = {ns.name: ns for ns in bundle.namespaces()}
    seven = {
        "trustusbank-bank-frontend",
        "trustusbank-bank-agents",
        "trustusbank-platform",
        "trustusbank-bank-mcp",
        "trustusbank-bank-vendors",
        "external-attacker",
        "trustusbank-observability",
    }
    assert seven <= set(namespaces)
    assert all(namespaces[name].ambient for name in {*seven, "external-fx"})
    assert not namespaces["istio-system"].ambient, "the control plane is not captured"
    assert namespaces["trustusbank-platform"].use_waypoint == "trustusbank-agentgw"
    assert {(s.namespace, s.name): s.ports[0].port for s in bundle.services()} == SERVICES
    [strict] = [m for m in bundle.objects if m.kind == "PeerAuthentication"]
    assert (strict.namespace, strict.body["spec"]["mtls"]["mode"]) == ("istio-system", "STRICT")
    accounts = [(d.namespace, d.service_account) for d in bundle.deployments()]
    assert len(set(accounts)) == len(accounts), "every workload needs its own SPIFFE identity"
    converter = bundle.view("Deployment", "trustusbank-bank-vendors", "currency-converter")
    assert converter.containers[0].image.endswith("acme-fx/currency-converter:1.0.0")
    assert "--variant" not in converter.containers[0].command, (
        "the build behind the tag is not the manifest's"
    )


def test_check_fails_precisely_on_a_broken_copy(tmp_path: Path) -> None:
    broken = tmp_path / "deploy"
    shutil.copytree(DEPLOY, broken)
    account = broken / "05-mcp-servers" / "account-mcp.yaml"
    lines = account.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if "serviceAccountName:" in line)
    lines[index] = lines[index].replace("serviceAccountName", "serviceAcountName")
    account.write_text("".join(lines))

    result = CliRunner().invoke(app, ["manifests", "check", str(broken)])
    assert result.exit_code == 1
    assert f"account-mcp.yaml:{index + 1}:" in result.output
    assert "serviceAcountName: unknown field (did you mean 'serviceAccountName'?)" in result.output
