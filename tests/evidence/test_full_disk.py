"""A full disk under the state directory: a real small tmpfs, filled until writes meet ENOSPC.

What must hold: an ingest that does not fit says so and loses nothing (the records and the
files' read offsets commit together or not at all), the chain still verifies, and once space
is freed the next ingest takes every line it could not take before, each once. A runtime
event that does not fit is an error to its writer, and the next event is not fused into the
fragment it may have left.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.tmpfs import fill, small_disk
from trustusbank.cli.app import app
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, ingest
from trustusbank.telemetry.jsonlog import LineNotWritten


@pytest.fixture
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    with small_disk(request, tmp_path / "disk", "1m") as mounted:
        yield mounted


def log_events(files: ClusterFiles, first: int, count: int) -> None:
    for n in range(first, first + count):
        files.record_event("restarted", {"process": f"ns/pod-{n}", "note": "x" * 400})


def offsets(files: ClusterFiles) -> list[tuple[str, str, int]]:
    with sqlite3.connect(files.evidence_db) as conn:
        return [tuple(row) for row in conn.execute("SELECT file, generation, offset FROM sources")]


def test_an_ingest_that_does_not_fit_loses_nothing_and_resumes(
    disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = ClusterFiles(disk / "state")
    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(files.state))
    store = EvidenceStore.of(files)
    log_events(files, 0, 20)
    assert ingest(files, store) == 20
    taken = offsets(files)
    log_events(files, 20, 200)  # ~100 KiB of new lines, written while there was room
    filler = fill(disk)

    full = CliRunner().invoke(app, ["evidence", "ingest"])
    assert full.exit_code == 1, full.output
    assert "Traceback" not in full.output
    assert f"error: cannot write the database {files.evidence_db}" in full.stderr
    assert "rolled back" in full.stderr
    assert "free space" in full.stderr
    assert offsets(files) == taken  # not one line marked as read that was not stored
    assert store.count() == 20
    assert store.verify().ok

    query = CliRunner().invoke(app, ["evidence", "query", "--json"])  # answers from what is stored
    assert query.exit_code == 0, query.output
    assert "warning: could not ingest" in query.stderr
    assert json.loads(query.stdout)["count"] == 20

    filler.unlink()
    resumed = CliRunner().invoke(app, ["evidence", "ingest"])
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.startswith("200 new record(s); chain head seq 220")
    processes = [json.loads(r.body)["process"] for r in store.select()]
    assert processes == [f"ns/pod-{n}" for n in range(220)]
    assert store.verify().ok


def test_a_runtime_event_that_does_not_fit_is_an_error_and_the_next_one_reads_whole(disk: Path) -> None:
    files = ClusterFiles(disk / "state")
    log_events(files, 0, 1)
    filler = fill(disk)
    os.truncate(filler, filler.stat().st_size - 4096)  # a page of room: the event is cut mid-line

    with pytest.raises(LineNotWritten, match=f"could not append to {files.events} .No space left") as raised:
        files.record_event("restarted", {"process": "ns/pod-1", "note": "y" * 10_000})
    assert raised.value.errno == errno.ENOSPC  # still the OSError it was, for callers that catch that
    assert not files.events.read_bytes().endswith(b"\n")  # a fragment of it was written

    filler.unlink()
    files.record_event("restarted", {"process": "ns/pod-2"})
    store = EvidenceStore.of(files)
    assert ingest(files, store) == 3
    kinds = [(r.kind, json.loads(r.body).get("process")) for r in store.select()]
    assert sorted(kinds, key=str) == sorted(
        [("restarted", "ns/pod-0"), ("unreadable-line", None), ("restarted", "ns/pod-2")], key=str
    )
    assert store.verify().ok


def test_a_report_that_does_not_fit_is_an_error_and_leaves_no_half_report(
    disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = ClusterFiles(tmp_path / "state")  # the chain on a roomy disk, the report aimed at the full one
    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(files.state))
    log_events(files, 0, 20)
    out = disk / "report"
    fill(disk)

    result = CliRunner().invoke(app, ["evidence", "report", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"error: cannot write the report into {out} (No space left on device)" in result.stderr
    assert list(out.iterdir()) == []
