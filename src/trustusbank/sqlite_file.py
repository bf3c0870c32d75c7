"""One SQLite database file with its schema: the embedded storage of every component.

Each use opens its own short-lived connection in one transaction. SQLite
connections are cheap, and this keeps stores safe whichever thread a server
runs a handler on.

Two failures of the file itself are named, whoever meets them: a file that is no
longer a readable database (`DamagedDatabase`) and a write the disk had no room for
(`DatabaseFull`, after SQLite rolled the transaction back). Both keep sqlite3's own
class as a base, so code that caught sqlite3's errors still does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trustusbank.errors import IntegrityError, UnavailableError

# SQLite's primary result codes for "the file is not a database any more" and "no room".
_CORRUPT, _FULL, _NOTADB = 11, 13, 26


class DamagedDatabase(IntegrityError, sqlite3.DatabaseError):
    """The file no longer reads as an SQLite database: damage to the bytes, not an edit of a row."""


class DatabaseFull(UnavailableError, sqlite3.OperationalError):
    """A write did not fit on the disk; SQLite rolled the transaction back, so nothing was half-written."""


def named(path: Path, exc: sqlite3.Error) -> sqlite3.Error:
    """`exc` as one of the named failures of `path` when it is one; otherwise `exc` itself."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_CORRUPT, _NOTADB):
        return DamagedDatabase(
            f"the database {path} is damaged ({exc}): its bytes no longer read as SQLite; "
            "restore it from a backup"
        )
    if code == _FULL:
        return DatabaseFull(
            f"cannot write the database {path} ({exc}): the change was rolled back; "
            f"free space on {path.parent} and try again"
        )
    return exc


class SqliteFile:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.executescript(schema)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction: committed on success, rolled back on error."""
        conn = sqlite3.connect(self.path, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            with conn:
                yield conn
        except sqlite3.Error as exc:
            failure = named(self.path, exc)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            conn.close()
