"""Evidence from a cluster: kubectl's pods and ztunnel's log lines, Prometheus's alerts and mailpit's
mail, mirrored once each into the evidence chain's inputs and ingested by the same code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s.cluster_fakes import CONVERTER, Observability, firing, mail, ztunnel_line
from tests.k8s.fakebin import FakeBin, make
from tests.serving import refused_url, served
from trustusbank import evidence
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.k8s.collect import Collected, Collector
from trustusbank.k8s.kubectl import Kubectl

ZTUNNEL = "app=ztunnel"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    bins = make(tmp_path / "bin")
    for key, value in bins.env(("kubectl",)).items():
        monkeypatch.setenv(key, value)
    return bins


def logs(fake: FakeBin, *lines: str) -> None:
    state = json.loads(fake.state.read_text()) if fake.state.exists() else {}
    state.setdefault("logs", {})[ZTUNNEL] = list(lines)
    fake.state.write_text(json.dumps(state))


@pytest.fixture
def stack() -> Iterator[tuple[Observability, dict[str, str]]]:
    double = Observability()
    with served(double.app) as server:
        yield double, {"prometheus": server.url, "mailpit": server.url}


def test_a_deny_in_ztunnels_log_becomes_a_deny_with_the_running_digest(
    fake: FakeBin, tmp_path: Path, stack: tuple[Observability, dict[str, str]]
) -> None:
    double, endpoints = stack
    double.alerts = [firing("IstioAuthZDeny", "2026-12-03T10:02:30Z", source_principal=CONVERTER)]
    double.messages = [mail("m1", "IstioAuthZDeny", "2026-12-03T10:03:00Z"), {"ID": "x", "Subject": "hello"}]
    logs(fake, ztunnel_line("ztunnel-a", "2026-12-03T10:02:07.000001Z"))
    files = ClusterFiles(tmp_path / "k8s")

    collected = Collector(Kubectl("kind-trustusbank"), files, endpoints).collect()
    assert (collected.access, collected.alerts, collected.mails, collected.problems) == (1, 1, 1, [])
    assert collected.started == 1  # the converter's running container
    evidence.ingest(files)
    store = evidence.open_store(files)
    [deny] = evidence.query(store, evidence.Query(denies=True))
    assert deny.src_identity == CONVERTER
    assert deny.workload == "currency-converter"
    assert deny.policy == "external-attacker/deny-bank-to-attacker"
    assert str(deny.digest).startswith("sha256:")  # from the pod's imageID
    kinds = {r.kind for r in evidence.query(store, evidence.Query())}
    assert {"alert-fired", "alert-notified", "started", "l4-deny"} <= kinds
    assert evidence.verify(files).ok


def test_nothing_is_mirrored_twice_and_a_new_line_is_not_missed(
    fake: FakeBin, tmp_path: Path, stack: tuple[Observability, dict[str, str]]
) -> None:
    _, endpoints = stack
    first, same_time = "2026-12-03T10:02:07.000001Z", "2026-12-03T10:02:07.000001Z"
    logs(fake, ztunnel_line("ztunnel-a", first))
    files = ClusterFiles(tmp_path / "k8s")

    def collector() -> Collected:
        return Collector(Kubectl(), files, endpoints).collect()

    assert collector().access == 1
    assert collector().access == 0  # kubectl gives the line again (--since-time is inclusive)
    logs(
        fake,
        ztunnel_line("ztunnel-a", first),
        ztunnel_line("ztunnel-a", same_time, error=None),  # another line in the same microsecond
        ztunnel_line("ztunnel-b", "2026-12-03T10:01:00Z"),  # a node whose first line is older
    )
    assert collector().access == 2
    calls = [c["argv"] for c in fake.calls() if "logs" in c["argv"] and ZTUNNEL in c["argv"]]
    assert not any(a.startswith("--since-time") for a in calls[0])  # the first time: everything
    assert "--since-time=2026-12-03T10:02:07.000001Z" in calls[1]
    mirrored = sorted(p.name for p in files.logs.glob("ztunnel-*.jsonl"))
    assert mirrored == ["ztunnel-ztunnel-a.jsonl", "ztunnel-ztunnel-b.jsonl"]


def test_an_unreachable_prometheus_is_said_and_the_logs_are_still_mirrored(
    fake: FakeBin, tmp_path: Path
) -> None:
    sock, url = refused_url()
    with sock:
        logs(fake, ztunnel_line("ztunnel-a", "2026-12-03T10:02:07Z"))
        collected = Collector(
            Kubectl(), ClusterFiles(tmp_path / "k8s"), {"prometheus": url, "mailpit": url}
        ).collect()
    assert collected.access == 1
    assert [p.split(":")[0] for p in collected.problems] == ["alerts not collected"]
