"""Caller identity from the topology file, and bounded conversation memory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trustusbank.agents.a2a.callers import topology_resolver
from trustusbank.agents.a2a.sessions import SessionStore
from trustusbank.agents.model.types import Message
from trustusbank.cluster.topology import Pod, Topology


def pod(name: str, ip: str, service_account: str, namespace: str = "trustusbank-bank-agents") -> Pod:
    return Pod(
        name=f"{name}-0",
        namespace=namespace,
        deployment=name,
        service_account=service_account,
        labels={"app": name},
        node="trustusbank-worker",
        ip=ip,
        app_ip=ip.rsplit(".", 1)[0] + f".{int(ip.rsplit('.', 1)[1]) + 128}",
        ports=[],
        image="trustusbank/agent",
    )


def test_peer_ip_maps_to_the_pods_principal_and_follows_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "topology.json"
    Topology(subnet=77, pods=[pod("triage-bot", "127.77.1.10", "triage-bot")]).save(path)
    resolve = topology_resolver(path)

    assert resolve("127.77.1.10") == "cluster.local/ns/trustusbank-bank-agents/sa/triage-bot"
    assert resolve("127.77.1.138") is None  # the app address is private to the pod, not a caller
    assert resolve("127.77.2.10") is None

    Topology(
        subnet=77, trust_domain="bank.example", pods=[pod("support-bot", "127.77.1.10", "support")]
    ).save(path)
    assert resolve("127.77.1.10") == "bank.example/ns/trustusbank-bank-agents/sa/support"


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_unreadable_topology_means_nobody_is_known(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "topology.json"
    Topology(subnet=77, pods=[pod("triage-bot", "127.77.1.10", "triage-bot")]).save(path)
    resolve = topology_resolver(path)
    assert resolve("127.77.1.10") is not None
    if damage == "garbage":
        path.write_text('{"subnet": 77, "pods": [')
    else:
        os.unlink(path)
    assert resolve("127.77.1.10") is None


def turn(i: int) -> tuple[Message, ...]:
    return (Message("user", f"q{i}"), Message("assistant", f"a{i}"))


def test_sessions_keep_the_latest_turns_of_the_latest_contexts() -> None:
    store = SessionStore(max_sessions=2, max_turns=2)
    for i in range(3):
        store.record("a", turn(i))
    assert [m.text for m in store.history("a")] == ["q1", "a1", "q2", "a2"]

    store.record("b", turn(0))
    store.history("a")  # reading counts as use: "b" is now the least recent
    store.record("c", turn(0))
    assert len(store) == 2
    assert store.history("b") == ()
    assert [m.text for m in store.history("c")] == ["q0", "a0"]
    assert store.history("a")


def test_sessions_refuse_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SessionStore(max_sessions=0)
