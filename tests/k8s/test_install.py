"""`trustusbank k8s up|down|policies` against fake kind/docker/helm/kubectl that record every call.

No cluster can run here; what is checked is the exact command sequence the installer runs
for a fresh install, for a re-run (nothing recreated), and for each way it can fail: a
missing tool, a Helm release that fails, a rollout that never completes, a busy local port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.fakebin import FakeBin, make
from tests.paths import DEPLOY
from trustusbank.k8s import forwards, versions
from trustusbank.k8s.image import image_tags

CONTEXT = f"kind-{versions.KIND_CLUSTER}"


@pytest.fixture
def fake(tmp_path: Path) -> FakeBin:
    return make(tmp_path / "bin")


def k8s(fake: FakeBin, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    tools = tuple(env.pop("TOOLS", "kind docker helm kubectl").split())
    environment = fake.env(
        tools, TRUSTUSBANK_STATE_DIR=str(tmp_path / "state"), TRUSTUSBANK_DEPLOY_DIR=str(DEPLOY), **env
    )
    return subprocess.run(
        [sys.executable, "-m", "trustusbank", "k8s", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def signature(call: dict[str, Any]) -> str:
    """A call as a short, stable line: the tool, its verb and the object it is about."""
    argv = list(call["argv"])
    for flag in ("--context", "--kube-context"):
        if flag in argv:
            del argv[argv.index(flag) : argv.index(flag) + 2]
    tool = call["tool"]
    if tool == "helm" and argv[:2] == ["upgrade", "--install"]:
        return f"helm install {argv[2]} {argv[argv.index('--version') + 1]}"
    if tool == "helm" and argv[:2] == ["repo", "add"]:
        return f"helm repo {argv[2]}"
    if tool == "kubectl" and argv[0] == "apply":
        return f"kubectl apply {Path(argv[-1]).stem if argv[-1] != '-' else 'stdin'}"
    if tool == "kubectl" and argv[:2] == ["rollout", "status"]:
        return f"kubectl rollout {argv[2]}"
    if tool == "kubectl" and argv[0] == "wait":
        return f"kubectl wait {argv[2]}"
    if tool == "docker" and argv[0] == "exec":
        return f"docker exec {argv[2]}"
    return " ".join([tool, *argv[:2]])


def _cluster_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """kubectl and helm calls that talk to the cluster (not `helm repo add`)."""
    return [c for c in calls if c["tool"] in ("kubectl", "helm") and "repo" not in c["argv"]]


TAGS = [t.ref for t in image_tags(DEPLOY)]
FRESH_KIND = [
    "kind get clusters",
    "kind create cluster",
    "docker inspect --format",
    "docker run --detach",
    "docker network inspect",
    "docker network connect",
    f"docker exec {versions.KIND_CLUSTER}-control-plane",
    f"docker exec {versions.KIND_CLUSTER}-worker",
    f"docker exec {versions.KIND_CLUSTER}-worker2",
    "kubectl apply stdin",
]
PLATFORM = [
    "kubectl apply standard-install",
    "helm repo istio",
    f"helm install istio-base {versions.ISTIO}",
    f"helm install istiod {versions.ISTIO}",
    f"helm install istio-cni {versions.ISTIO}",
    f"helm install ztunnel {versions.ISTIO}",
    "helm repo prometheus-community",
    "helm repo grafana-community",
    "helm repo jouve",
    f"helm install mailpit {versions.MAILPIT}",
    f"helm install kube-prometheus-stack {versions.KUBE_PROMETHEUS_STACK}",
    f"helm install loki {versions.LOKI}",
    f"helm install tempo {versions.TEMPO}",
    "docker build --file",
    *(f"docker push {ref}" for ref in TAGS),
    f"helm install agentgateway-crds {versions.AGENTGATEWAY}",
    f"helm install agentgateway {versions.AGENTGATEWAY}",
    f"helm install kagent-crds {versions.KAGENT}",
    f"helm install kagent {versions.KAGENT}",
]
DEPLOY_PHASES = [
    "kubectl apply 00-namespaces",
    "kubectl apply 01-external",
    "kubectl rollout deployment/fx-api",
    "kubectl rollout deployment/mock-attacker",
    "kubectl apply 02-ambient",
    "kubectl apply 04-registry",
    "kubectl rollout deployment/agentregistry",
    "kubectl apply 05-mcp-servers",
    "kubectl rollout deployment/account-mcp",
    "kubectl rollout deployment/currency-converter",
    "kubectl rollout deployment/ticket-mcp",
    "kubectl rollout deployment/transaction-mcp",
    "kubectl apply 06-agentgateway",
    "kubectl rollout deployment/mcp-guard",
    "kubectl apply 07-agents",
    "kubectl rollout deployment/scripted-model",
    "kubectl wait agents.kagent.dev/fraud-bot",
    "kubectl wait agents.kagent.dev/support-bot",
    "kubectl wait agents.kagent.dev/triage-bot",
    "kubectl apply 09-frontend",
    "kubectl rollout deployment/chatbot",
    "kubectl apply 10-observability",
]


def test_a_fresh_install_runs_every_phase_in_order(fake: FakeBin, tmp_path: Path) -> None:
    done = k8s(fake, tmp_path, "up", "--kind", "--no-port-forwards")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [signature(c) for c in fake.calls()] == FRESH_KIND + PLATFORM + DEPLOY_PHASES
    calls = fake.calls()
    assert all(
        CONTEXT in c["argv"] for c in calls if c["tool"] in ("kubectl", "helm") and "repo" not in c["argv"]
    )
    istiod = next(c for c in calls if c["tool"] == "helm" and "istiod" in c["argv"])
    assert "profile=ambient" in istiod["argv"]
    hosts = next(c for c in calls if c["tool"] == "docker" and c["argv"][0] == "exec")
    assert hosts["stdin"] == f'[host."http://{versions.REGISTRY_CONTAINER}:5000"]\n'
    build = next(c for c in calls if c["argv"][:1] == ["build"])
    assert "CONVERTER_BUILD=clean" in build["argv"]
    assert build["argv"][-1] == str(DEPLOY.resolve().parent)  # the checkout deploy/ belongs to
    # What was applied is deploy/ as a cluster gets it: the OSS waypoint class, no Enterprise kinds.
    rendered = tmp_path / "state" / "k8s" / "rendered"
    gateway = (rendered / "06-agentgateway.yaml").read_text()
    assert f"gatewayClassName: {versions.AGENTGATEWAY_OSS_CLASS}\n" in gateway
    assert "istio.io/waypoint-for: service" in gateway
    agents = (rendered / "07-agents.yaml").read_text()
    assert "kind: AccessPolicy" not in agents
    assert "name: kagent-access-support-bot" in agents  # the same rules, as ztunnel DENY policies
    assert "kube-prometheus-stack-prometheus" in agents  # the cluster's scraper keeps reaching /metrics
    assert not (rendered / "08-defence.yaml").exists()
    assert (
        "imagePullPolicy: Always" in (rendered / "05-mcp-servers.yaml").read_text()
    )  # the rug pull reaches pods
    assert "not applied: AccessPolicy" not in done.stdout  # said by --dry-run, not by a run


def test_a_re_run_recreates_nothing(fake: FakeBin, tmp_path: Path) -> None:
    assert k8s(fake, tmp_path, "up", "--kind", "--no-port-forwards").returncode == 0
    fake.forget_calls()
    again = k8s(fake, tmp_path, "up", "--kind", "--no-port-forwards")
    assert again.returncode == 0, again.stdout + again.stderr
    checks = ["kind get clusters", "docker inspect --format", "docker network inspect"]
    assert [signature(c) for c in fake.calls()] == [
        *checks,
        *FRESH_KIND[6:],  # the registry mirror files and the ConfigMap: rewritten, unchanged
        *PLATFORM,
        *DEPLOY_PHASES,
    ]
    assert again.stdout.count("— already done") == 3


def test_the_dry_run_prints_the_whole_plan_and_runs_nothing(fake: FakeBin, tmp_path: Path) -> None:
    done = k8s(fake, tmp_path, "up", "--kind", "--dry-run", TOOLS="kubectl")
    assert done.returncode == 0, done.stderr
    assert fake.calls() == []
    out = done.stdout
    assert "(missing here: kind, docker, helm)" in out
    assert f"$ kind create cluster --name {versions.KIND_CLUSTER}" in out
    assert "not applied: AccessPolicy trustusbank-bank-agents/support-bot-callers" in out
    assert "not applied: Deployment trustusbank-observability/alert-evaluator" in out
    for port in (18009, 18011, 18006, 18001, 18002, 18012, 18007):
        assert f"http://127.0.0.1:{port}" in out
    steps = [line for line in out.splitlines() if line.startswith("[")]
    assert steps[0].startswith(f"[1/{len(steps)}] phase 01: kind cluster")
    assert steps[-1].endswith("apply deploy/10-observability")


def test_a_missing_tool_stops_before_anything_runs(fake: FakeBin, tmp_path: Path) -> None:
    done = k8s(fake, tmp_path, "up", "--kind", TOOLS="kind docker kubectl")
    assert done.returncode == 1
    assert "helm is missing: install it from https://helm.sh/docs/intro/install/" in done.stderr
    assert "Traceback" not in done.stderr
    assert fake.calls() == []


def test_a_failed_helm_release_stops_with_its_status_and_events(fake: FakeBin, tmp_path: Path) -> None:
    done = k8s(fake, tmp_path, "up", "--kind", "--no-port-forwards", FAKE_FAIL="helm:upgrade:istiod")
    assert done.returncode == 1
    said = done.stderr
    assert "phase 02: helm release istiod" in said
    assert "simulated failure (helm:upgrade:istiod)" in said
    assert "STATUS: failed" in said  # helm status, run to diagnose
    assert "BackOff" in said  # the namespace's events
    signatures = [signature(c) for c in fake.calls()]
    assert f"helm install ztunnel {versions.ISTIO}" not in signatures
    assert not any(s.startswith("kubectl apply 0") for s in signatures)


def test_a_rollout_that_never_completes_shows_the_pods_logs(fake: FakeBin, tmp_path: Path) -> None:
    done = k8s(
        fake,
        tmp_path,
        "up",
        "--no-port-forwards",
        "--context",
        "mine",
        FAKE_FAIL="kubectl:rollout:deployment/chatbot",
    )
    assert done.returncode == 1
    assert "apply deploy/09-frontend" in done.stderr
    assert "the pod's own last words" in done.stderr
    calls = fake.calls()
    assert not any(c["tool"] == "kind" for c in calls)  # no --kind: the user's own cluster
    assert all(
        "mine" in c["argv"] for c in calls if c["tool"] in ("kubectl", "helm") and "repo" not in c["argv"]
    )
    assert signature(calls[-1]).startswith("kubectl logs")  # diagnostics last; nothing after the failure
    assert "kubectl apply 10-observability" not in [signature(c) for c in calls]


def test_down_with_kind_deletes_the_cluster_and_registry(fake: FakeBin, tmp_path: Path) -> None:
    assert k8s(fake, tmp_path, "up", "--kind", "--no-port-forwards").returncode == 0
    fake.forget_calls()
    done = k8s(fake, tmp_path, "down", "--kind")
    assert done.returncode == 0, done.stderr
    assert [signature(c) for c in fake.calls()] == ["kind delete cluster", "docker rm --force"]


def test_down_on_your_cluster_removes_only_what_up_applied(fake: FakeBin, tmp_path: Path) -> None:
    done = k8s(fake, tmp_path, "down", "--context", "mine")
    assert done.returncode == 0, done.stderr
    deleted = [Path(c["argv"][-1]).stem for c in fake.calls()]
    assert deleted == sorted(deleted, reverse=True)
    assert deleted[-1] == "00-namespaces"
    assert not any(c["tool"] == "helm" for c in fake.calls())


def test_policies_on_and_off_apply_the_defence_set(fake: FakeBin, tmp_path: Path) -> None:
    assert k8s(fake, tmp_path, "policies", "on", "--context", "mine").returncode == 0
    assert k8s(fake, tmp_path, "policies", "off", "--context", "mine").returncode == 0
    applied, deleted = (c["argv"] for c in fake.calls())
    rendered = tmp_path / "state" / "k8s" / "rendered" / "08-defence.yaml"
    assert applied[-3:] == ["apply", "-f", str(rendered)]
    assert deleted[-4:] == ["delete", "--ignore-not-found", "-f", str(rendered)]
    assert "kube-prometheus-stack-prometheus" in rendered.read_text()


def test_a_busy_local_port_is_not_forwarded_and_said(
    fake: FakeBin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setattr(
            forwards, "FORWARDS", (forwards.Forward(port, "ns", "svc/x", 80, "the tab", "tab"),)
        )
        monkeypatch.setenv("PATH", fake.env(("kubectl",))["PATH"])
        started = forwards.start(tmp_path / "k8s", "mine")
    assert started == [
        {
            "local": port,
            "namespace": "ns",
            "target": "svc/x",
            "port": 80,
            "what": "the tab",
            "name": "tab",
            "pid": None,
            "busy": True,
        }
    ]
    assert fake.calls() == []


def test_upgrade_banking_app_pushes_new_bytes_under_the_same_tag_and_restarts(
    fake: FakeBin, tmp_path: Path
) -> None:
    done = k8s(fake, tmp_path, "upgrade-banking-app", "--context", "mine")
    assert done.returncode == 0, done.stdout + done.stderr
    converter = next(ref for ref in TAGS if "currency-converter" in ref)
    assert [signature(c) for c in fake.calls()] == [
        "docker build --file",
        f"docker push {converter}",
        "kubectl rollout restart",
        "kubectl rollout deployment/currency-converter",
    ]
    build = fake.calls()[0]["argv"]
    assert "CONVERTER_BUILD=real-rugpull" in build
    assert build[build.index("--tag") + 1] == converter
    assert build.count("--tag") == 1  # no other workload's tag moves


def test_upgrade_banking_app_refuses_the_clean_build(fake: FakeBin, tmp_path: Path) -> None:
    done = k8s(fake, tmp_path, "upgrade-banking-app", "--variant", "clean")
    assert done.returncode == 2
    assert fake.calls() == []
