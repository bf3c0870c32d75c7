"""Damaged evidence files: a clear error naming the file, never a traceback, never "intact".

The damage is done as a disk or a careless hand would do it, to the real files: random bytes
over the database, the database cut short, one page of an index overwritten, the head file
garbled or gone, the head file's write failing after a commit. Damage (the bytes no longer
read) is told apart from a broken chain (readable, but edited).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from trustusbank.cli.app import app
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, ingest
from trustusbank.evidence.store import HeadNotWritten

EVENTS = 150


@pytest.fixture(autouse=True)
def state(files: ClusterFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(files.state))


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["evidence", *args])


def log_events(files: ClusterFiles, first: int, count: int) -> None:
    for n in range(first, first + count):
        files.record_event("restarted", {"process": f"ns/pod-{n}", "note": "x" * 200})


@pytest.fixture
def ingested(files: ClusterFiles, store: EvidenceStore) -> EvidenceStore:
    log_events(files, 0, EVENTS)
    assert ingest(files, store) == EVENTS
    return store


def refused_cleanly(result: Result, *fragments: str) -> None:
    """Exit 1 with `error: ...` holding every fragment, and no traceback anywhere."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("damage", ["random bytes", "cut in half"])
@pytest.mark.usefixtures("ingested")
def test_a_database_that_no_longer_reads_is_a_clear_error_for_every_command(
    files: ClusterFiles, damage: str
) -> None:
    data = files.evidence_db.read_bytes()
    if damage == "random bytes":
        files.evidence_db.write_bytes(bytes((i * 7919) % 251 for i in range(len(data))))
    else:
        files.evidence_db.write_bytes(data[: len(data) // 2])

    for command in (["verify"], ["verify", "--no-ingest", "--json"], ["query"], ["ingest"]):
        refused_cleanly(run(*command), f"the database {files.evidence_db} is damaged", "restore it")


def _overwrite_page(db: Path, page: int) -> None:
    with sqlite3.connect(db) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with db.open("r+b") as out:
        out.seek((page - 1) * size)
        out.write(b"\xa5" * size)


def test_damage_the_chain_walk_never_reads_is_still_found(
    files: ClusterFiles, ingested: EvidenceStore
) -> None:
    """An index page overwritten: the records (and so the chain) still read, but the file is damaged."""
    with sqlite3.connect(files.evidence_db) as conn:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'records_kind'").fetchone()
    _overwrite_page(files.evidence_db, root)

    result = ingested.verify()
    assert (result.ok, result.damaged) == (False, True)
    assert result.describe().startswith(f"evidence DAMAGED: the database {files.evidence_db} is damaged")
    cli = run("verify", "--no-ingest")
    assert cli.exit_code == 1
    assert "evidence DAMAGED" in cli.stderr
    assert "intact" not in cli.output


def test_an_edited_row_is_a_broken_chain_not_damage(files: ClusterFiles, ingested: EvidenceStore) -> None:
    with sqlite3.connect(files.evidence_db) as conn:
        conn.execute("DROP TRIGGER records_no_update")
        conn.execute("UPDATE records SET summary = 'nothing happened' WHERE seq = 7")
    result = ingested.verify()
    assert (result.ok, result.damaged, result.bad_seq) == (False, False, 7)
    assert result.describe().startswith("chain BROKEN at seq 7")


@pytest.mark.parametrize("garbled", ['{"seq": 150, "ha', '{"seq": "150", "hash": "abc"}', "\0" * 40])
def test_a_garbled_head_file_is_damage_named_and_nothing_is_appended(
    files: ClusterFiles, ingested: EvidenceStore, garbled: str
) -> None:
    files.evidence_head.write_text(garbled)
    log_events(files, EVENTS, 1)

    result = ingested.verify()
    assert (result.ok, result.damaged) == (False, True)
    assert f"the head file {files.evidence_head} is damaged" in (result.problem or "")
    verify = run("verify", "--json")
    assert verify.exit_code == 1
    assert "warning: not ingesting" in verify.stderr
    assert json.loads(verify.stdout)["damaged"] is True
    refused_cleanly(run("ingest"), f"the head file {files.evidence_head} is damaged")
    assert ingested.count() == EVENTS  # not extended past a head it cannot read
    assert files.evidence_head.read_text() == garbled  # nor the witness overwritten


def test_a_missing_head_file_is_named_and_nothing_is_appended(
    files: ClusterFiles, ingested: EvidenceStore
) -> None:
    files.evidence_head.unlink()
    log_events(files, EVENTS, 1)
    verify = run("verify")
    assert verify.exit_code == 1
    assert f"chain BROKEN at seq {EVENTS}: the head file {files.evidence_head} is missing" in verify.stderr
    refused_cleanly(run("ingest"), f"the head file {files.evidence_head} is missing")
    assert ingested.count() == EVENTS


def _block_head_writes(files: ClusterFiles) -> Path:
    """Make the head file's temporary name a directory: its write fails, as on a full disk."""
    blocker = files.evidence_head.with_name(files.evidence_head.name + ".tmp")
    blocker.mkdir()
    return blocker


def test_a_head_write_that_fails_after_the_commit_keeps_the_records_and_catches_up(
    files: ClusterFiles, ingested: EvidenceStore
) -> None:
    before = ingested.recorded_head()
    blocker = _block_head_writes(files)
    log_events(files, EVENTS, 5)

    refused_cleanly(
        run("ingest"),
        f"the head file {files.evidence_head} could not be written",
        f"the 5 record(s) just committed to {files.evidence_db} are kept",
        "trustusbank evidence ingest",
    )
    assert ingested.count() == EVENTS + 5  # committed, acknowledged in the error, kept
    assert ingested.recorded_head() == before  # the old head, whole: never half written
    behind = ingested.verify()
    assert behind.ok
    assert behind.head.seq == EVENTS + 5
    assert "the head file is 5 record(s) behind" in behind.describe()

    blocker.rmdir()
    assert ingest(files, ingested) == 0  # nothing new, but the head is brought up to date
    assert ingested.recorded_head() == ingested.verify().head
    assert "behind" not in ingested.verify().describe()


def test_a_new_chain_writes_its_head_before_its_first_record(
    files: ClusterFiles, store: EvidenceStore
) -> None:
    """Else a first ingest whose head write failed would leave records with no head: 'missing' forever."""
    log_events(files, 0, 3)
    blocker = _block_head_writes(files)
    with pytest.raises(HeadNotWritten, match="could not be written"):
        ingest(files, store)
    assert store.count() == 0
    assert not files.evidence_head.exists()

    blocker.rmdir()
    assert ingest(files, store) == 3
    assert store.verify().ok
