"""The story's seam on a real cluster, with fake kubectl/docker on PATH and real HTTP on 127.0.0.1.

The attacker is the project's own mock-attacker app (what the cluster runs); Prometheus and
mailpit answer in their documented shapes (`tests/k8s/cluster_fakes.py`). What is checked is
what the acts rely on: which commands change the cluster, which digest each act reports, when
an alert counts for an act, and that a deny in ztunnel's log comes back with the rug-pulled
digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.k8s.cluster_fakes import CONVERTER, Observability, firing, mail, ztunnel_line
from tests.k8s.fakebin import FakeBin, make
from tests.paths import DEPLOY
from tests.serving import served
from trustusbank.k8s.plan import Options
from trustusbank.scenario.drivers.kubernetes import NOT_CHECKED, KubernetesDriver
from trustusbank.workloads.attacker.app import create_app
from trustusbank.workloads.attacker.store import EventStore

TAG = "localhost:5001/acme-fx/currency-converter:1.0.0"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    bins = make(tmp_path / "bin")
    for key, value in bins.env(("kubectl", "docker")).items():
        monkeypatch.setenv(key, value)
    return bins


@pytest.fixture
def driver(tmp_path: Path, fake: FakeBin) -> Iterator[tuple[KubernetesDriver, Observability]]:
    double = Observability()
    store = EventStore(tmp_path / "attacker.sqlite3")
    with served(double.app) as observability, served(lambda _: create_app(store)) as attacker:
        endpoints = {"attacker": attacker.url, "prometheus": observability.url, "mailpit": observability.url}

        async def no_wait(_: float) -> None:
            return None

        options = Options(DEPLOY, tmp_path / "state" / "k8s", context="kind-trustusbank")
        yield KubernetesDriver(options, endpoints, sleep=no_wait), double


def argvs(fake: FakeBin) -> list[list[str]]:
    return [[c["tool"], *c["argv"]] for c in fake.calls()]


def digest(build: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(build.encode()).hexdigest()


async def test_the_three_changes_push_restart_and_apply_as_the_write_up_does(
    driver: tuple[KubernetesDriver, Observability], fake: FakeBin
) -> None:
    story, _ = driver
    async with httpx.AsyncClient(trust_env=False) as client:
        await client.post(f"{story.endpoints['attacker']}/exfil", content=b"{}")

    clean = await story.baseline(lambda _: None)
    assert (clean.tag, clean.digest, clean.build, clean.signature) == (
        TAG,
        digest("clean"),
        "clean",
        NOT_CHECKED,
    )
    assert clean.pushed  # nothing on record yet: the clean bytes pushed, to be sure
    calls = argvs(fake)
    assert any(c[:2] == ["docker", "build"] and "CONVERTER_BUILD=clean" in c for c in calls)
    assert ["docker", "push", TAG] in calls
    defence = str(story.options.workdir / "rendered" / "08-defence.yaml")
    assert any(c[-4:] == ["delete", "--ignore-not-found", "-f", defence] for c in calls)
    restarted = json.loads(fake.state.read_text())["restarts"]
    assert restarted == [
        "deployment/currency-converter",
        *(f"deployment/{n}" for n in ("account-mcp", "transaction-mcp", "ticket-mcp")),
    ]
    async with httpx.AsyncClient(trust_env=False) as client:
        seen = (await client.get(f"{story.endpoints['attacker']}/api/count")).json()
    assert seen == {
        "count": 0,
        "total": 1,
    }
    assert story.exfil_total() == 1

    again = await story.baseline(lambda _: None)
    assert not again.pushed  # what runs is the clean build on record: no push, no converter restart

    fake.forget_calls()
    pulled = await story.rug_pull(lambda _: None)
    assert (pulled.digest, pulled.previous_digest, pulled.build, pulled.pushed) == (
        digest("real-rugpull"),
        digest("clean"),
        "real-rugpull",
        True,
    )
    assert any("CONVERTER_BUILD=real-rugpull" in c for c in argvs(fake))

    fake.forget_calls()
    defended = await story.defence_on(lambda _: None)
    assert (defended.digest, defended.pushed) == (digest("real-rugpull"), False)
    assert [c for c in argvs(fake) if "08-defence" in " ".join(c)] == [
        ["kubectl", "--context", "kind-trustusbank", "apply", "-f", defence]
    ]
    assert json.loads(fake.state.read_text())["defence"] is True


async def test_an_alert_already_firing_before_the_act_counts_only_if_it_grew(
    driver: tuple[KubernetesDriver, Observability],
) -> None:
    story, double = driver
    old = firing("BankToAttackerAttempt", "2026-12-03T10:00:00Z", "1e+00", outcome="allowed")
    double.alerts = [old]
    await story.baseline(lambda _: None)  # snapshots what fires before the act
    started = datetime(2026, 12, 3, 10, 1, tzinfo=UTC).timestamp()  # the act began after the old alert
    assert await story.alerts_since(started, (), lambda _: None) == []

    double.alerts = [{**old, "value": "2e+00"}, firing("IstioAuthZDeny", "2026-12-03T10:05:00Z")]
    double.messages = [mail("m1", "IstioAuthZDeny", "2026-12-03T10:05:31Z")]
    found = {a.alertname: a for a in await story.alerts_since(started, (), lambda _: None)}
    assert set(found) == {"BankToAttackerAttempt", "IstioAuthZDeny"}
    assert found["IstioAuthZDeny"].mailed
    assert not found["BankToAttackerAttempt"].mailed


async def test_a_deny_in_ztunnels_log_is_an_act_receipt_with_the_rug_pulled_digest(
    driver: tuple[KubernetesDriver, Observability], fake: FakeBin
) -> None:
    story, _ = driver
    await story.rug_pull(lambda _: None)
    state = json.loads(fake.state.read_text())
    state["logs"] = {"app=ztunnel": [ztunnel_line("ztunnel-w1", "2099-01-01T00:00:00Z")]}
    fake.state.write_text(json.dumps(state))

    [deny] = story.denies_since(0.0)
    assert (deny.source_identity, deny.workload, deny.policy) == (
        CONVERTER,
        "currency-converter",
        "external-attacker/deny-bank-to-attacker",
    )
    assert deny.digest == digest("real-rugpull")
    summary = story.evidence_summary()
    assert summary.verified
    assert summary.records > 1
