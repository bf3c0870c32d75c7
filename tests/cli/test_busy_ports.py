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


def test_the_consoles_pages_are_listed_and_a_taken_seed_port_said(capsys: pytest.CaptureFixture[str]) -> None:
    taken = (
        "port 18001 on 127.0.0.1 is already in use; served on http://127.0.0.1:40123/d/dora-evidence instead"
    )
    status = {
        "nodes": [],
        "pods": [],
        "forwards": [],
        "console": {
            "pid": 4242,
            "ready": True,
            "restarts": 0,
            "pages": [
                {
                    "name": "dashboard",
                    "seed_port": 18001,
                    "url": "http://127.0.0.1:40123/d/dora-evidence",
                    "note": taken,
                },
                {"name": "sessions", "seed_port": 18007, "url": "http://127.0.0.1:18007/", "note": ""},
            ],
        },
    }
    render_status(status)
    printed = capsys.readouterr()
    assert f"warning: the console's dashboard is not on its seed port: {taken}" in printed.err
    assert "sessions" not in printed.err
    assert "console dashboard: http://127.0.0.1:40123/d/dora-evidence" in printed.out
    assert "console sessions: http://127.0.0.1:18007/" in printed.out
