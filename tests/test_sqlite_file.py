"""Every component's SQLite file names its own failures: damaged bytes, and a disk with no room."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tmpfs import fill, small_disk
from trustusbank.errors import IntegrityError, UnavailableError
from trustusbank.sqlite_file import DamagedDatabase, DatabaseFull, SqliteFile

SCHEMA = "CREATE TABLE IF NOT EXISTS notes (body TEXT NOT NULL);"


def test_a_file_that_is_not_a_database_is_named_and_still_a_sqlite_error(tmp_path: Path) -> None:
    path = tmp_path / "pins.sqlite3"
    path.write_bytes(b"this was a database once" * 200)
    with pytest.raises(DamagedDatabase, match=f"the database {path} is damaged") as raised:
        SqliteFile(path, SCHEMA)
    assert isinstance(raised.value, IntegrityError)  # the CLI prints it as one line
    assert isinstance(raised.value, sqlite3.DatabaseError)  # and old `except sqlite3...` still catch it


def test_other_sqlite_errors_pass_through_unchanged(tmp_path: Path) -> None:
    db = SqliteFile(tmp_path / "notes.sqlite3", SCHEMA)
    with pytest.raises(sqlite3.OperationalError, match="no such table") as raised, db.connect() as conn:
        conn.execute("SELECT * FROM missing")
    assert type(raised.value) is sqlite3.OperationalError


@pytest.fixture
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    with small_disk(request, tmp_path / "disk", "512k") as mounted:
        yield mounted


def test_a_write_with_no_room_is_rolled_back_and_named(disk: Path) -> None:
    db = SqliteFile(disk / "bank.sqlite3", SCHEMA)
    with db.connect() as conn:
        conn.execute("INSERT INTO notes VALUES ('kept')")
    fill(disk)
    with (
        pytest.raises(DatabaseFull, match=f"cannot write the database {db.path}") as raised,
        db.connect() as conn,
    ):
        conn.executemany("INSERT INTO notes VALUES (?)", [("x" * 4000,)] * 200)
    assert isinstance(raised.value, UnavailableError)
    with db.connect() as conn:
        assert [row["body"] for row in conn.execute("SELECT body FROM notes")] == ["kept"]
