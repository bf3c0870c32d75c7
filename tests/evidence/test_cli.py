"""`trustusbank evidence ...`: ingest first, JSON where asked, exit 1 on a broken chain or no cluster."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.evidence.story import CONVERTER, RUGPULL, Story
from trustusbank.cli.app import app
from trustusbank.cluster.layout import ClusterFiles


@pytest.fixture(autouse=True)
def state(files: ClusterFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(files.state))


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["evidence", *args])


def test_query_ingests_first_and_answers_in_json(story: Story) -> None:
    result = run("query", "--denies", "--identity", "trustusbank-bank-vendors/currency-converter", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["count"] == 1
    [deny] = payload["records"]
    assert (deny["kind"], deny["src_identity"], deny["digest"]) == ("l4-deny", CONVERTER, RUGPULL)
    assert deny["body"]["error"].startswith("connection closed due to policy rejection")


def test_query_text_and_no_ingest(story: Story) -> None:
    assert run("query", "--no-ingest", "--json").exit_code == 0
    assert json.loads(run("query", "--no-ingest", "--json").stdout)["count"] == 0
    result = run("query", "--kind", "tool-call", "--since", "1h")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("tool=convert_currency") == 3
    assert run("query", "--since", "last tuesday").exit_code == 2


def test_verify_passes_then_names_the_edited_record(story: Story, files: ClusterFiles) -> None:
    ok = run("verify", "--json")
    assert ok.exit_code == 0, ok.output
    head = json.loads(ok.stdout)["head"]
    assert run("verify", "--anchor", f"{head['seq']}:{head['hash']}").exit_code == 0

    conn = sqlite3.connect(files.evidence_db)
    with conn:
        conn.execute("DROP TRIGGER records_no_update")
        conn.execute("UPDATE records SET policy = 'none' WHERE kind = 'l4-deny'")
        seq = conn.execute("SELECT seq FROM records WHERE kind = 'l4-deny'").fetchone()[0]
    conn.close()
    broken = run("verify")
    assert broken.exit_code == 1
    assert f"BROKEN at seq {seq}" in broken.stderr
    assert json.loads(run("verify", "--json").stdout)["bad_seq"] == seq


def test_trace_by_id_and_by_record(story: Story) -> None:
    result = run("trace", story.traces["3"], "--json")
    assert result.exit_code == 0, result.output
    kinds = [r["kind"] for r in json.loads(result.stdout)["records"]]
    assert "tool-call" in kinds
    assert "l4-deny" in kinds
    deny = json.loads(run("query", "--kind", "l4-deny", "--json").stdout)["records"][0]
    text = run("trace", "--record", str(deny["seq"]))
    assert text.exit_code == 0, text.output
    assert "customer_profile" in text.stdout
    assert "paired deny" in text.stdout
    assert run("trace").exit_code == 2
    assert run("trace", "ab" * 16).exit_code == 1


def test_report_writes_the_three_files(story: Story, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run("report", "--dora", "--out", str(out), "--suspect-namespace", "external-attacker")
    assert result.exit_code == 0, result.output
    written = [Path(line) for line in result.stdout.split()]
    assert {p.name for p in written} == {"dora-report.md", "dora-report.html", "dora-report.json"}
    assert all(p.parent == out and p.stat().st_size > 0 for p in written)


def test_no_cluster_state_is_a_clear_error() -> None:
    for command in (["ingest"], ["query"], ["verify"], ["report"]):
        result = run(*command)
        assert result.exit_code == 1
        assert "trustusbank up" in result.stderr
