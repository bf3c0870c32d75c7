"""Where a cell's attack was stopped: each layer that refused something, the guard by its rule."""

from __future__ import annotations

from pathlib import Path

from trustusbank.scenario.bench.harness import guard_records, payload_for, where_stopped
from trustusbank.scenario.bench.tasks import DESCRIPTION, RESULT, Outcome
from trustusbank.scenario.receipts import Deny
from trustusbank.workloads.vendor.converter import DESCRIPTION as CLEAN


def deny(kind: str, policy: str) -> Deny:
    return Deny(kind, "x", None, None, None, None, None, policy, None, 0, "")


def test_each_layer_by_its_receipts() -> None:
    nothing = Outcome("", [])
    assert where_stopped([], [], nothing) == []
    assert where_stopped([deny("l4-deny", "external-attacker/deny-bank-to-attacker")], [], nothing) == [
        "ztunnel"
    ]
    assert where_stopped([deny("mcp-deny", "trustusbank-platform/account-mcp rule 0")], [], nothing) == [
        "waypoint"
    ]
    refused = [deny("mcp-deny", "mcp-guard/data-flow")]
    assert where_stopped(refused, [{"rule": "tool-pin"}], nothing) == ["guard/data-flow", "guard/tool-pin"]
    assert where_stopped([deny("mcp-deny", "mcp-guard")], [], nothing) == ["guard/unavailable"]
    quarantined = Outcome("", [{"name": "convert_currency", "result": "[quarantined by mcp-guard: ...]"}])
    assert where_stopped([deny("a2a-deny", "p")], [], quarantined) == ["guard/quarantine", "AccessPolicy"]


def test_the_guards_evidence_lines_since_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "mcp-guard.jsonl"
    log.write_text('{"action": "mask", "rule": "tool-pin"}\n')
    offset = log.stat().st_size
    with log.open("a") as handle:
        handle.write('{"action": "reject", "rule": "data-flow"}\nnot json\n{"action": "pass"}\n')
    assert guard_records(log, offset) == [{"action": "reject", "rule": "data-flow"}]
    assert guard_records(None, 0) == []
    assert guard_records(tmp_path / "absent", 0) == []


def test_the_payload_puts_the_attack_in_one_vector_only() -> None:
    assert payload_for(RESULT, "ATTACK") == ("ATTACK", CLEAN)
    assert payload_for(DESCRIPTION, "ATTACK") == ("", f"{CLEAN} ATTACK")
    assert payload_for(None, "") == ("", CLEAN)
