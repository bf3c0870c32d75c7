"""The evidence chain: append-only, and tamper-evident where append-only is not enough.

The tampering is done as an attacker with write access to the file would do it:
straight at the SQLite file with sqlite3, dropping the triggers first.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.evidence.story import Story
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore, Head, ingest
from trustusbank.evidence.record import Record, canonical
from trustusbank.evidence.store import ChainBroken


def tamper(store: EvidenceStore, *statements: str) -> None:
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute("DROP TRIGGER records_no_update")
        conn.execute("DROP TRIGGER records_no_delete")
        for statement in statements:
            conn.execute(statement)
    conn.close()


def row(store: EvidenceStore, seq: int) -> Record:
    return store.select("seq = ?", (seq,))[0]


@pytest.fixture
def chained(story: Story, files: ClusterFiles, store: EvidenceStore) -> EvidenceStore:
    assert ingest(files, store) > 20
    assert store.verify().ok
    return store


def test_an_intact_chain_verifies_and_each_hash_covers_its_record(chained: EvidenceStore) -> None:
    result = chained.verify()
    assert result.ok
    assert result.bad_seq is None
    assert result.records == chained.count()
    assert result.recorded_head == result.head
    first, second = row(chained, 1), row(chained, 2)
    assert second.prev_hash == first.hash
    assert first.compute_hash() == first.hash


def test_triggers_refuse_update_and_delete(chained: EvidenceStore) -> None:
    conn = sqlite3.connect(chained.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE records SET summary = 'nothing happened' WHERE seq = 3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM records WHERE seq = 3")
    conn.close()
    assert chained.verify().ok


def test_an_edited_row_is_named_by_seq(chained: EvidenceStore) -> None:
    deny = chained.select("kind = 'l4-deny'")[0]
    body = deny.original()
    body["error"] = "connection complete"
    tamper(chained, f"UPDATE records SET body = '{canonical(body)}' WHERE seq = {deny.seq}")

    result = chained.verify()
    assert not result.ok
    assert result.bad_seq == deny.seq
    assert "contents changed" in (result.problem or "")
    assert result.head.seq == deny.seq - 1  # everything before it still verifies


def test_an_edited_subject_field_is_caught_too(chained: EvidenceStore) -> None:
    deny = chained.select("kind = 'l4-deny'")[0]
    tamper(
        chained,
        f"UPDATE records SET src_identity = 'spiffe://cluster.local/ns/x/sa/y' WHERE seq = {deny.seq}",
    )
    assert chained.verify().bad_seq == deny.seq


def test_a_row_rewritten_with_its_hash_recomputed_breaks_the_next_link(chained: EvidenceStore) -> None:
    target = row(chained, 5)
    forged = Record(**{**target.__dict__, "summary": "routine"})
    forged_hash = forged.compute_hash()
    tamper(chained, f"UPDATE records SET summary = 'routine', hash = '{forged_hash}' WHERE seq = 5")

    result = chained.verify()
    assert result.bad_seq == 6
    assert "prev_hash" in (result.problem or "")
    assert "seq 5" in (result.problem or "")


def test_a_deleted_row_is_a_gap(chained: EvidenceStore) -> None:
    deny = chained.select("kind = 'l4-deny'")[0]
    tamper(chained, f"DELETE FROM records WHERE seq = {deny.seq}")

    result = chained.verify()
    assert result.bad_seq == deny.seq
    assert "missing" in (result.problem or "")


def test_swapped_rows_are_caught(chained: EvidenceStore) -> None:
    tamper(
        chained,
        "UPDATE records SET seq = -1 WHERE seq = 2",
        "UPDATE records SET seq = 2 WHERE seq = 3",
        "UPDATE records SET seq = 3 WHERE seq = -1",
    )
    assert chained.verify().bad_seq == 2


def test_a_cut_tail_is_caught_by_the_head_file_and_never_papered_over(
    chained: EvidenceStore, files: ClusterFiles
) -> None:
    last = chained.count()
    tamper(chained, f"DELETE FROM records WHERE seq > {last - 3}")

    result = chained.verify()
    assert not result.ok
    assert result.bad_seq == last - 2
    assert "cut from the tail" in (result.problem or "")
    # New evidence must not overwrite the head file, the only witness of the cut.
    witness = chained.recorded_head()
    with files.events.open("a") as out:
        out.write(json.dumps({"time": 1.0, "event": "late"}) + "\n")
    with pytest.raises(ChainBroken):
        ingest(files, chained)
    assert chained.recorded_head() == witness
    assert witness is not None
    assert witness.seq == last
    assert not chained.verify().ok


def test_a_removed_head_file_is_reported(chained: EvidenceStore) -> None:
    chained.head_path.unlink()
    result = chained.verify()
    assert not result.ok
    assert "missing" in (result.problem or "")


def test_an_anchor_kept_elsewhere_must_still_hold(chained: EvidenceStore) -> None:
    head = chained.verify().head
    assert chained.verify(anchor=head).ok
    assert not chained.verify(anchor=Head(head.seq, "0" * 64)).ok
    assert not chained.verify(anchor=Head(head.seq + 5, head.hash)).ok


def test_a_rewrite_of_the_whole_chain_and_its_head_is_caught_only_by_an_anchor(
    chained: EvidenceStore, files: ClusterFiles, tmp_path: Path
) -> None:
    """What the head file cannot do: an attacker who rebuilds the chain and the head file wins, unless
    the head was kept elsewhere (the report prints it)."""
    anchor = chained.verify().head
    forged = EvidenceStore(tmp_path / "forged.sqlite3", tmp_path / "forged.head.json")
    records = [r for r in chained.select() if r.kind != "l4-deny"]
    forged.append(records)
    files.evidence_db.unlink()
    forged.path.rename(files.evidence_db)
    Path(forged.head_path).replace(files.evidence_head)

    rebuilt = EvidenceStore.of(files)
    assert rebuilt.verify().ok
    assert not rebuilt.verify(anchor=anchor).ok


def test_concurrent_ingests_add_each_line_once(story: Story, files: ClusterFiles) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(ingest(files, EvidenceStore.of(files)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = EvidenceStore.of(files)
    assert not errors
    assert sum(results) == store.count() > 20
    assert sorted(results)[:3] == [0, 0, 0]
    assert store.verify().ok
    origins = [r.origin for r in store.select()]
    assert len(origins) == len(set(origins))
