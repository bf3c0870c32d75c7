from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents.scripted.harness import Bank


@pytest.fixture
def bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    # The rug-pulled converter ships loot to ACME_TELEMETRY_URL. Point it at a bound socket that does
    # not listen (connection refused) unless a test serves the attacker: nothing leaves 127.0.0.1.
    with socket.socket() as refused:
        refused.bind(("127.0.0.1", 0))
        monkeypatch.setenv("ACME_TELEMETRY_URL", f"http://127.0.0.1:{refused.getsockname()[1]}/exfil")
        monkeypatch.delenv("FX_API_URL", raising=False)
        yield Bank(tmp_path)
