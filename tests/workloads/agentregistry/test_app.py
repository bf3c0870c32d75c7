"""agentregistry: the four registered servers, pinned digests, and drift against the pins."""

from __future__ import annotations

import subprocess
import sys

import httpx

from trustusbank.workloads.agentregistry.catalogue import PinStore

NAMES = ["account-mcp", "transaction-mcp", "ticket-mcp", "acme-fx/currency-converter"]


def servers(running) -> dict[str, dict]:
    body = httpx.get(f"{running.url}/api/servers").json()
    return {entry["name"]: entry for entry in body["servers"]}


def test_lists_the_four_registered_servers(serve):
    entries = servers(serve("agentregistry"))
    assert list(entries) == NAMES
    converter = entries["acme-fx/currency-converter"]
    assert converter["publisher"] == "ACME FX Ltd"
    assert converter["image"].endswith("acme-fx/currency-converter:1.0.0")
    assert (
        converter["spiffe_id"] == "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
    )
    assert converter["transport"]["url"] == (
        "http://currency-converter.trustusbank-bank-vendors.svc.cluster.local:8000/mcp"
    )
    assert entries["account-mcp"]["tools"] == ["get_balance", "get_profile"]


def test_each_converter_build_is_judged_against_the_pin(serve):
    converter = servers(serve("agentregistry"))["acme-fx/currency-converter"]
    builds = {b["variant"]: b for b in converter["builds"]}
    assert len({b["digest"] for b in builds.values()}) == 3
    assert converter["pinned"]["digest"] == builds["clean"]["digest"]
    verdicts = {v: (b["digest_matches_pin"], b["tool_list_matches_pin"]) for v, b in builds.items()}
    assert verdicts == {"clean": (True, True), "mock-rugpull": (False, True), "real-rugpull": (False, False)}


def test_pins_survive_restarts_and_reveal_drift(serve, state_dir):
    PinStore(state_dir / "data" / "agentregistry.sqlite3").pin(
        "account-mcp", "sha256:registered", "sha256:tools"
    )
    first = serve("agentregistry")
    account = servers(first)["account-mcp"]
    assert account["pinned"]["digest"] == "sha256:registered"
    assert account["builds"][0]["digest_matches_pin"] is False
    registered_at = servers(first)["ticket-mcp"]["pinned"]["registered_at"]
    first.stop()
    assert servers(serve("agentregistry"))["ticket-mcp"]["pinned"]["registered_at"] == registered_at


def test_single_entry_page_and_unknown(serve):
    registry = serve("agentregistry")
    one = httpx.get(f"{registry.url}/api/servers/acme-fx/currency-converter").json()
    assert one["classification"] == "third-party"
    assert httpx.get(f"{registry.url}/api/servers/nope").status_code == 404
    assert "DORA Art. 28" in httpx.get(registry.url).text


def test_catalogue_file_from_env(serve, tmp_path):
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(
        "servers:\n  - {name: account-mcp, title: A, publisher: P, version: 2.0.0,"
        " classification: first-party,"
        " deployment: trustusbank-bank-mcp/account-mcp, description: D}\n"
    )
    entries = servers(serve("agentregistry", env={"AGENTREGISTRY_CATALOGUE": str(catalogue)}))
    assert list(entries) == ["account-mcp"]
    assert entries["account-mcp"]["version"] == "2.0.0"


def test_missing_catalogue_file_is_a_one_line_error(state_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "trustusbank", "serve", "agentregistry", "--port", "0"],
        env={
            "TRUSTUSBANK_STATE_DIR": str(state_dir),
            "AGENTREGISTRY_CATALOGUE": str(tmp_path / "none.yaml"),
            "PATH": "",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: AGENTREGISTRY_CATALOGUE={tmp_path / 'none.yaml'}: no such file"
