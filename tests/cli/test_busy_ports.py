"""A seed port another program holds is said first, loudly, by `up` and `status`."""

from __future__ import annotations

import pytest

from trustusbank.cli.cluster_cmd import render_status


def test_a_taken_seed_port_is_a_warning_before_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    status = {
        "nodes": [],
        "pods": [],
        "forwards": [
            {"name": "trustusbank-bank-frontend/chatbot", "local_port": 18009, "state": "skipped: in use"},
            {
                "name": "external-attacker/mock-attacker",
                "local_port": 18011,
                "state": "http://127.0.0.1:18011",
            },
        ],
    }
    render_status(status)
    err = capsys.readouterr().err
    assert "warning: port 18009 for trustusbank-bank-frontend/chatbot is not this cluster's" in err
    assert "18011" not in err
