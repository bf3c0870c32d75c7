"""A log line cut short: never dropped, never stored half, never fused into the next line.

The writer is a real process, SIGKILLed after writing a line and a half; the writer that
comes after it is the cluster's own (`record_event`, or a component's `JsonLinesLog`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trustusbank.cli.app import app
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, held_back, ingest
from trustusbank.telemetry.jsonlog import JsonLinesLog

WHOLE = json.dumps({"time": 1.5, "event": "crashed", "process": "ns/pod-0"}) + "\n"
HALF = '{"time": 2.5, "event": "cra'

# Writes a line and a half the way any writer does (plain appends), then waits to be killed.
KILLED_MID_LINE = textwrap.dedent(
    """
    import os, sys
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, sys.argv[2].encode())
    os.write(fd, sys.argv[3].encode())
    print("written", flush=True)
    sys.stdin.read()
    """
)


def killed_mid_line(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_LINE, str(path), WHOLE, HALF],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == "written\n"
    writer.send_signal(signal.SIGKILL)
    assert writer.wait() == -signal.SIGKILL
    writer.stdout.close()
    assert writer.stdin is not None
    writer.stdin.close()


def runtime_event(files: ClusterFiles) -> tuple[Path, Callable[[], object]]:
    return files.events, lambda: files.record_event("restarted", {"process": "ns/pod-1"})


def node_proxy_log(files: ClusterFiles) -> tuple[Path, Callable[[], object]]:
    path = files.access_log("trustusbank-worker")
    log = JsonLinesLog(path, scope="access")
    return path, lambda: log.write("info", "access", "connection complete", {"src.workload": "pod-1"})


@pytest.mark.parametrize("writer", [runtime_event, node_proxy_log])
def test_a_writer_killed_mid_line_loses_nothing_and_fuses_nothing(
    files: ClusterFiles,
    store: EvidenceStore,
    writer: Callable[[ClusterFiles], tuple[Path, Callable[[], object]]],
) -> None:
    files.make()
    path, write_next = writer(files)
    killed_mid_line(path)

    assert ingest(files, store) == 1  # the whole line; the half one is held back, not stored half
    assert ingest(files, store) == 0
    name = path.relative_to(files.root).as_posix()
    assert held_back(files, store) == {name: len(HALF)}  # and said so
    write_next()  # the next writer ends the fragment before its own line
    assert ingest(files, store) == 2
    assert held_back(files, store) == {}

    records = store.select()
    [fragment] = [r for r in records if r.kind == "unreadable-line"]
    assert fragment.original() == {"raw": HALF}  # kept whole, as it was cut
    first, after = [r for r in records if r is not fragment]
    assert json.loads(first.body)["process"] == "ns/pod-0"
    assert "pod-1" in after.body  # the next line read whole, not fused into the fragment
    assert store.verify().ok


def test_a_malformed_line_between_good_ones_is_recorded_in_its_place(
    files: ClusterFiles, store: EvidenceStore
) -> None:
    files.make()
    files.events.write_text(WHOLE + "#$%garbage\n" + json.dumps({"time": 3.5, "event": "started"}) + "\n")
    assert ingest(files, store) == 3
    kinds = {r.kind for r in store.select()}
    assert kinds == {"crashed", "unreadable-line", "started"}
    [bad] = [r for r in store.select() if r.kind == "unreadable-line"]
    assert bad.original() == {"raw": "#$%garbage"}
    assert bad.origin.endswith(f":{len(WHOLE)}")  # where it sits in the file


def test_ingest_says_which_file_ends_in_an_unfinished_line(
    files: ClusterFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    files.make()
    monkeypatch.setenv("TRUSTUSBANK_STATE_DIR", str(files.state))
    killed_mid_line(files.events)
    result = CliRunner().invoke(app, ["evidence", "ingest"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1 new record(s)")
    assert f"held back: logs/runtime.jsonl ends in an unfinished line ({len(HALF)} bytes)" in result.stderr
