"""Operator pods under test: a topology whose pods' app addresses are the test's own servers."""

from __future__ import annotations

from pathlib import Path

from trustusbank.cluster.topology import Pod, PodPort, Topology


def pod(namespace: str, deployment: str, port: int, role: str = "workload") -> Pod:
    """A pod of `namespace/deployment` whose app answers at 127.0.0.1:`port` (its port `http`)."""
    return Pod(
        name=f"{deployment}-0", namespace=namespace, deployment=deployment, service_account=deployment,
        labels={"app": deployment}, node="trustusbank-worker", ip="127.0.0.1", app_ip="127.0.0.1",
        ports=[PodPort("http", port)], image=f"{deployment}:test", role=role,
    )  # fmt: skip


def write_topology(path: Path, pods: list[Pod]) -> None:
    """The topology file as the supervisor writes it (a new file replacing the old one)."""
    Topology(subnet=77, pods=pods).save(path)
