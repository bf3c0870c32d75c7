"""`reset --k8s` and `evidence --k8s ingest` against fake kubectl/docker, the real attacker app and
Prometheus/mailpit doubles; the port-forwards are the one thing stood in (no cluster to forward to)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.k8s.cluster_fakes import Observability, ztunnel_line
from tests.k8s.fakebin import FakeBin, make
from tests.serving import served
from trustusbank.cli import k8s_story
from trustusbank.cli.app import app
from trustusbank.scenario.drivers import kubernetes
from trustusbank.workloads.attacker.app import create_app
from trustusbank.workloads.attacker.store import EventStore


@pytest.fixture
def setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBin]:
    bins = make(tmp_path / "bin")
    for key, value in bins.env(("kubectl", "docker")).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(kubernetes, "PROPAGATION_SECONDS", 0.0)  # no istiod to wait for
    k8s_story.remember_context(tmp_path / "state" / "k8s", "kind-trustusbank")  # as `k8s up` left it
    double = Observability()
    store = EventStore(tmp_path / "attacker.sqlite3")
    with served(double.app) as observability, served(lambda _: create_app(store)) as attacker:
        found = {"attacker": attacker.url, "prometheus": observability.url, "mailpit": observability.url}
        monkeypatch.setattr(k8s_story.forwards, "ensure", lambda workdir, context: found)
        yield bins


def test_reset_on_the_cluster_pushes_the_clean_build_and_says_so(setting: FakeBin) -> None:
    result = CliRunner().invoke(app, ["reset", "--k8s", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["cluster"] == "Kubernetes context kind-trustusbank"
    assert document["converter"]["build"] == "clean"
    assert all(
        c["argv"][:2] == ["--context", "kind-trustusbank"] for c in setting.calls() if c["tool"] == "kubectl"
    )


def test_evidence_ingest_on_the_cluster_builds_its_own_chain(setting: FakeBin, tmp_path: Path) -> None:
    state = {"logs": {"app=ztunnel": [ztunnel_line("ztunnel-w1", "2026-12-03T10:02:07Z")]}}
    setting.state.write_text(json.dumps(state))

    ingested = CliRunner().invoke(app, ["evidence", "--k8s", "ingest"])
    assert ingested.exit_code == 0, ingested.output
    assert "1 ztunnel access lines" in ingested.stderr
    denies = CliRunner().invoke(app, ["evidence", "--k8s", "query", "--denies", "--json", "--no-ingest"])
    assert denies.exit_code == 0, denies.output
    [deny] = json.loads(denies.stdout)["records"]
    assert deny["workload"] == "currency-converter"
    assert (tmp_path / "state" / "k8s" / "cluster" / "evidence.sqlite3").is_file()
    embedded = CliRunner().invoke(app, ["evidence", "query", "--denies", "--json", "--no-ingest"])
    assert embedded.exit_code != 0  # the embedded cluster's chain is a different one, and there is none


def test_upgrade_and_policies_on_the_cluster(setting: FakeBin) -> None:
    upgraded = CliRunner().invoke(app, ["upgrade-banking-app", "--k8s", "--json"])
    assert upgraded.exit_code == 0, upgraded.output
    assert json.loads(upgraded.stdout)["converter"]["build"] == "real-rugpull"
    again = CliRunner().invoke(app, ["upgrade-banking-app", "--k8s", "--json"])
    assert json.loads(again.stdout)["converter"]["pushed"] is False  # already running: nothing pushed

    on = CliRunner().invoke(app, ["policies", "on", "--k8s"])
    assert on.exit_code == 0, on.output
    assert json.loads(setting.state.read_text())["defence"] is True
    assert "not on a cluster: AuthorizationPolicy trustusbank-observability/default-deny" in on.stderr
    off = CliRunner().invoke(app, ["policies", "off", "--k8s"])
    assert off.exit_code == 0, off.output
    assert json.loads(setting.state.read_text())["defence"] is False

    wrong = CliRunner().invoke(app, ["upgrade-banking-app", "--k8s", "--variant", "evil"])
    assert wrong.exit_code == 2
