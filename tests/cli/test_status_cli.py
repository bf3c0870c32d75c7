"""`trustusbank status` as printed: the pods table read at an 80-column terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from tests.paths import DEPLOY
from trustusbank.cli import cluster_cmd
from trustusbank.cluster.layout import DEFENCE_DIR
from trustusbank.cluster.topology import plan
from trustusbank.manifests.bundle import load_bundle


def _status() -> dict[str, Any]:
    """The status the supervisor writes, for the pods deploy/ plans (the longest real names)."""
    topo = plan(load_bundle(DEPLOY, exclude=[DEPLOY / DEFENCE_DIR]), subnet=42)
    return {
        "nodes": [
            {"name": n.name, "role": n.role, "ip": n.ip, "ztunnel_pid": 4242, "ready": True}
            for n in topo.nodes
        ],
        "pods": [
            {
                "namespace": p.namespace,
                "name": p.name,
                "node": p.node,
                "ip": p.ip,
                "ports": [port.port for port in p.ports],
                "identity": p.spiffe_uri(topo.trust_domain),
                "ready": True,
                "restarts": 0,
            }
            for p in topo.pods
        ],
    }


def test_pod_names_never_break_mid_word_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    buffer = io.StringIO()
    monkeypatch.setattr(cluster_cmd, "out", Console(file=buffer))  # sized from COLUMNS, as a terminal's
    status = _status()

    cluster_cmd.render_status(status)

    lines = buffer.getvalue().splitlines()
    table = lines[lines.index("pods".ljust(80)) : lines.index("identities")]
    words = {word for line in table for word in line.split()}
    assert all(len(line) <= 80 for line in table)
    # Some `namespace/name` is too long to share a line with the other columns.
    assert any(len(p["namespace"]) + len(p["name"]) + 1 > 40 for p in status["pods"])
    for pod in status["pods"]:
        assert pod["name"] in words, f"{pod['name']} is broken across lines"
        assert f"{pod['namespace']}/" in words, f"{pod['namespace']} is broken across lines"
