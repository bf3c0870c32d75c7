"""The evidence store: append-only SQLite, every record hash-chained to the one before.

Two lines of defence, and what each one catches:
- SQLite triggers refuse UPDATE and DELETE on the records. That stops mistakes and
  honest tools; anyone who can write the file can drop the triggers.
- The hash chain is what makes tampering *evident*: record n's hash covers all of
  its fields and record n-1's hash. `verify` walks the chain and names the first
  record that does not check out: an edited row (its hash no longer matches), a
  deleted row (a gap in seq, or a prev_hash that names a record that is gone), rows
  swapped or renumbered (seq is hashed too), a row rewritten with a recomputed hash
  (the next row's prev_hash no longer matches).
- The chain cannot see its own tail being cut: the shorter chain is still a valid
  chain. So the last (seq, hash) is also written to a small file beside the
  database after every append, and `verify` checks that the chain still reaches it.

What is not detected: someone who rewrites the database *and* the head file
consistently (or deletes both) produces a chain that verifies, because nothing here
is secret. Against that, keep the head elsewhere: the DORA report prints it, and
`verify --anchor SEQ:HASH` checks the chain still holds a head recorded earlier.
Records appended after a head was taken are not an error (the head is a lower bound).

Damage is told apart from tampering. A database whose bytes no longer read as SQLite
(`DamagedDatabase`, from SQLite's own checks: a walk of every page) or a head file
that is not the JSON it should be is *damaged*; a readable chain that does not check
out is *broken*. Either way nothing is appended until someone looks.

A full disk loses nothing acknowledged: the records and the ingest offsets commit in
one transaction, so a write that does not fit is rolled back whole. The head file is
written after the commit (a temporary file, then a rename, so it is never half
written); if that write fails the head is left behind the chain, which verifies (a
lower bound), and the next writer brings it up to date.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.errors import IntegrityError, UnavailableError
from trustusbank.evidence.record import COLUMNS, GENESIS, NewRecord, Record, iso
from trustusbank.sqlite_file import DamagedDatabase, SqliteFile

_SUBJECTS = (
    "src_identity",
    "dst_identity",
    "workload",
    "namespace",
    "image",
    "digest",
    "trace_id",
    "policy",
    "tool",
    "flags",
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    origin TEXT NOT NULL,
    body TEXT NOT NULL,
    {", ".join(f"{name} TEXT" for name in _SUBJECTS)},
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_origin ON records(origin);
CREATE INDEX IF NOT EXISTS records_time ON records(time);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind);
CREATE INDEX IF NOT EXISTS records_trace ON records(trace_id);
CREATE INDEX IF NOT EXISTS records_src ON records(src_identity);
CREATE INDEX IF NOT EXISTS records_dst ON records(dst_identity);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'evidence records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'evidence records are append-only'); END;
CREATE TABLE IF NOT EXISTS sources (
    file TEXT PRIMARY KEY,
    generation TEXT NOT NULL,
    offset INTEGER NOT NULL
);
"""


class ChainBroken(IntegrityError, RuntimeError):
    """The store no longer matches its recorded head; nothing is appended until someone looks."""


class HeadDamaged(IntegrityError, ValueError):
    """The head file is there but is not the (seq, hash) it should hold."""


class HeadNotWritten(UnavailableError, OSError):
    """Records were committed but the head file could not be brought up to date (a full disk, say)."""


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int  # how many records verified, from seq 1
    head: Head  # the last record that verified (seq 0 and the genesis hash for an empty chain)
    recorded_head: Head | None  # what the head file says
    bad_seq: int | None = None
    problem: str | None = None
    damaged: bool = False  # the files' bytes are damaged (corruption), not a chain that was edited

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.damaged:
            return f"evidence DAMAGED: {self.problem}"
        if not self.ok:
            return f"chain BROKEN at seq {self.bad_seq}: {self.problem}"
        intact = f"chain intact: {self.records} records, head seq {self.head.seq} hash {self.head.hash}"
        if self.recorded_head is not None and self.recorded_head.seq < self.head.seq:
            behind = self.head.seq - self.recorded_head.seq
            intact += f" (the head file is {behind} record(s) behind; the next ingest updates it)"
        return intact


class Writer:
    """The one writer's view, inside the store's lock and one IMMEDIATE transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        last = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        self.head = Head(last["seq"], last["hash"]) if last else Head(0, GENESIS)
        self.appended: list[Record] = []

    def position(self, file: str) -> tuple[str, int] | None:
        row = self.conn.execute("SELECT generation, offset FROM sources WHERE file = ?", (file,)).fetchone()
        return (row["generation"], row["offset"]) if row else None

    def set_position(self, file: str, generation: str, offset: int) -> None:
        self.conn.execute(
            "INSERT INTO sources VALUES (?, ?, ?) ON CONFLICT(file) DO UPDATE SET "
            "generation = excluded.generation, offset = excluded.offset",
            (file, generation, offset),
        )

    def has_origin(self, origin: str) -> bool:
        return self.conn.execute("SELECT 1 FROM records WHERE origin = ?", (origin,)).fetchone() is not None

    def append(self, new: NewRecord) -> Record:
        fields = {name: getattr(new, name) for name in NewRecord.__dataclass_fields__}
        unsealed = Record(**fields, seq=self.head.seq + 1, prev_hash=self.head.hash)
        record = replace(unsealed, hash=unsealed.compute_hash())
        names = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        self.conn.execute(
            f"INSERT INTO records ({names}) VALUES ({marks})", [getattr(record, c) for c in COLUMNS]
        )
        self.head = Head(record.seq, record.hash)
        self.appended.append(record)
        return record

    def select(self, where: str = "1", params: Sequence[Any] = ()) -> list[Record]:
        rows = self.conn.execute(f"SELECT * FROM records WHERE {where} ORDER BY seq", params).fetchall()
        return [_record(row) for row in rows]


def _record(row: sqlite3.Row) -> Record:
    return Record(**{c: row[c] for c in COLUMNS})


class EvidenceStore:
    def __init__(self, db: Path, head: Path) -> None:
        self.path = db
        self.head_path = head
        self.lock_path = db.with_name(db.name + ".lock")
        self._db = SqliteFile(db, SCHEMA)

    @classmethod
    def of(cls, files: ClusterFiles) -> EvidenceStore:
        return cls(files.evidence_db, files.evidence_head)

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        """The store's single writer: a file lock, then one IMMEDIATE transaction; the head file after.

        It refuses to extend a chain that no longer reaches its recorded head: appending would
        overwrite the head file, and with it the only trace of a cut tail.
        """
        with self.lock_path.open("a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self._db.connect() as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    writer = Writer(conn)
                    recorded = self._check_head(conn, writer.head)
                    if recorded is None:  # a new chain: its head file exists before its first record
                        self._write_head(writer.head, 0)
                        recorded = writer.head
                    yield writer
                if recorded != writer.head:  # appended to, or left behind by a head write that failed
                    self._write_head(writer.head, len(writer.appended))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, records: Sequence[NewRecord]) -> list[Record]:
        with self.writer() as writer:
            for new in records:
                writer.append(new)
            return list(writer.appended)

    def select(self, where: str = "1", params: Sequence[Any] = ()) -> list[Record]:
        with self._db.connect() as conn:
            rows = conn.execute(f"SELECT * FROM records WHERE {where} ORDER BY seq", params).fetchall()
        return [_record(row) for row in rows]

    def count(self) -> int:
        with self._db.connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def positions(self) -> dict[str, tuple[str, int]]:
        """How far each input file has been read: its name → (generation, byte offset)."""
        with self._db.connect() as conn:
            rows = conn.execute("SELECT file, generation, offset FROM sources").fetchall()
        return {row["file"]: (row["generation"], row["offset"]) for row in rows}

    # -- the head file -------------------------------------------------------
    def _check_head(self, conn: sqlite3.Connection, last: Head) -> Head | None:
        """The recorded head, if the chain still reaches it; ChainBroken when it does not."""
        try:
            recorded = self.recorded_head()
        except (OSError, HeadDamaged) as exc:
            raise ChainBroken(str(exc)) from exc
        if recorded is None:
            if last.seq > 0:
                raise ChainBroken(f"the head file {self.head_path} is missing")
            return None
        at = _hashes_at(conn, [recorded.seq]).get(recorded.seq)
        if recorded.seq > last.seq or (recorded.seq > 0 and at != recorded.hash):
            raise ChainBroken(
                f"the chain (last seq {last.seq}) does not reach its recorded head (seq {recorded.seq})"
            )
        return recorded

    def _write_head(self, head: Head, appended: int) -> None:
        """Replace the head file whole: a temporary file, flushed, then renamed over it."""
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        text = json.dumps({"seq": head.seq, "hash": head.hash, "written": iso(datetime.now(UTC))})
        try:
            with tmp.open("w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.head_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            committed = (
                f"; the {appended} record(s) just committed to {self.path} are kept, the chain intact"
                if appended
                else ""
            )
            raise HeadNotWritten(
                f"the head file {self.head_path} could not be written ({exc.strerror or exc}){committed}: "
                "free space and run `trustusbank evidence ingest` again, it brings the head file up to date"
            ) from exc

    def recorded_head(self) -> Head | None:
        """The head file's (seq, hash); None when there is no such file. Unreadable is HeadDamaged."""
        try:
            text = self.head_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            raw = json.loads(text)
            seq, digest = raw["seq"], raw["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            raise HeadDamaged(
                f"the head file {self.head_path} is damaged: not the JSON head it holds ({exc})"
            ) from exc
        if not isinstance(seq, int) or seq < 0 or not isinstance(digest, str) or len(digest) != 64:
            raise HeadDamaged(f"the head file {self.head_path} is damaged: seq {seq!r}, hash {digest!r}")
        return Head(seq, digest)

    # -- verification --------------------------------------------------------
    def verify(self, anchor: Head | None = None) -> Verification:
        """Walk the chain from seq 1; stop at the first record that does not check out."""
        head = Head(0, GENESIS)
        try:
            recorded = self.recorded_head()
        except (OSError, HeadDamaged) as exc:
            return Verification(False, 0, head, None, 0, f"{exc}; restore it, or check with --anchor", True)
        try:
            with self._db.connect() as conn:
                damage = _damage(conn)
                if damage is not None:
                    problem = f"the database {self.path} is damaged ({damage}); restore it from a backup"
                    return Verification(False, 0, head, recorded, None, problem, True)
                for row in conn.execute("SELECT * FROM records ORDER BY seq"):
                    broken = _check(row, head)
                    if broken is not None:
                        return Verification(False, head.seq, head, recorded, head.seq + 1, broken)
                    head = Head(row["seq"], row["hash"])
                hashes = _hashes_at(conn, [h.seq for h in (recorded, anchor) if h is not None])
        except DamagedDatabase as exc:
            return Verification(False, head.seq, head, recorded, head.seq + 1, str(exc), True)
        for name, expected in (("the head file", recorded), ("the anchor", anchor)):
            if expected is None:
                continue
            if expected.seq > head.seq:
                problem = (
                    f"the chain ends at seq {head.seq} but {name} records seq {expected.seq}: "
                    f"{expected.seq - head.seq} record(s) were cut from the tail"
                )
                return Verification(False, head.seq, head, recorded, head.seq + 1, problem)
            if expected.seq > 0 and hashes.get(expected.seq) != expected.hash:
                problem = (
                    f"seq {expected.seq} has hash {hashes.get(expected.seq)}, {name} says {expected.hash}"
                )
                return Verification(False, head.seq, head, recorded, expected.seq, problem)
        if recorded is None and head.seq > 0:
            problem = (
                f"the head file {self.head_path} is missing: a cut tail could not be detected; "
                "restore it, or check with --anchor"
            )
            return Verification(False, head.seq, head, None, head.seq, problem)
        return Verification(True, head.seq, head, recorded)


def _check(row: sqlite3.Row, prev: Head) -> str | None:
    seq = row["seq"]
    if seq != prev.seq + 1:
        return f"seq {prev.seq + 1} is missing (the next record is seq {seq}): record(s) deleted"
    if row["prev_hash"] != prev.hash:
        return (
            f"prev_hash does not match seq {prev.seq}'s hash: seq {prev.seq} was rewritten, "
            "or records were removed or reordered"
        )
    try:
        json.loads(row["body"])
        recomputed = _record(row).compute_hash()
    except (ValueError, TypeError) as exc:
        return f"the record cannot be read: {exc}"
    if recomputed != row["hash"]:
        return "its contents changed: the stored hash does not match the record"
    return None


def _damage(conn: sqlite3.Connection) -> str | None:
    """What SQLite's own check of every page finds wrong with the file, or None."""
    found = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    return None if found == ["ok"] else "; ".join(found).replace("\n", "; ")


def _hashes_at(conn: sqlite3.Connection, seqs: list[int]) -> dict[int, str]:
    out = {}
    for seq in seqs:
        row = conn.execute("SELECT hash FROM records WHERE seq = ?", (seq,)).fetchone()
        if row is not None:
            out[seq] = row["hash"]
    return out
