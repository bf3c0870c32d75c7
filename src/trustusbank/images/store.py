"""The image store: the embedded stand-in for the seed's `localhost:5001` registry.

A tag (`localhost:5001/acme-fx/currency-converter:1.0.0`) points at a digest,
and a digest names a build (a workload and one of its variants; the digest is
over the build's module bytes, see `digest.py`). Moving a tag is the whole
supply-chain attack: the Deployment keeps its image string, the digest behind
it changes. So every push is kept in a history (when, old and new digest, who,
why), and signatures are stored by digest, as cosign stores them next to the
image. SQLite, so that the CLI, the supervisor and the pods that read it
(read-only) can share it across processes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustusbank.errors import UnavailableError
from trustusbank.images.builds import BUILDS
from trustusbank.images.digest import build_digest
from trustusbank.sqlite_file import SqliteFile

if TYPE_CHECKING:  # signing needs `cryptography`, which a pod pulling its image never loads
    from cryptography.hazmat.primitives.asymmetric import ec

    from trustusbank.images.signing import Signer

STORE_FILE = "store.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    digest TEXT PRIMARY KEY, workload TEXT NOT NULL, variant TEXT NOT NULL, pushed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    tag TEXT PRIMARY KEY, digest TEXT NOT NULL REFERENCES manifests(digest), updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS signatures (
    digest TEXT NOT NULL REFERENCES manifests(digest), key_id TEXT NOT NULL, signer TEXT NOT NULL,
    payload BLOB NOT NULL, signature TEXT NOT NULL, signed_at REAL NOT NULL, PRIMARY KEY (digest, key_id)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, tag TEXT NOT NULL, old_digest TEXT,
    new_digest TEXT NOT NULL, workload TEXT NOT NULL, variant TEXT NOT NULL, signer TEXT,
    actor TEXT NOT NULL, reason TEXT NOT NULL
);
"""


class ImageStoreError(UnavailableError, RuntimeError):
    """The store cannot answer (missing, unreadable) or refuses a push."""


class ImageNotFound(ImageStoreError):
    """No such tag: what a container runtime reports as ErrImagePull."""


@dataclass(frozen=True)
class Build:
    workload: str
    variant: str

    def __post_init__(self) -> None:
        image = BUILDS.get(self.workload)
        if image is None or self.variant not in image.variants:
            raise ImageStoreError(f"no build {self.variant!r} of workload {self.workload!r}")

    @classmethod
    def default(cls, workload: str) -> Build:
        if workload not in BUILDS:
            raise ImageStoreError(f"no workload {workload!r}")
        return cls(workload, BUILDS[workload].default_variant)

    def digest(self) -> str:
        """The digest of this build's bytes as they are now."""
        return build_digest(BUILDS[self.workload], self.variant)

    def __str__(self) -> str:
        return f"{self.workload} ({self.variant})"


@dataclass(frozen=True)
class Resolved:
    tag: str
    digest: str
    build: Build
    updated_at: float


@dataclass(frozen=True)
class Pushed:
    tag: str
    old_digest: str | None
    new_digest: str
    build: Build
    signer: str | None

    @property
    def changed(self) -> bool:
        return self.old_digest != self.new_digest

    def to_dict(self) -> dict[str, Any]:
        """As recorded in the runtime log (`image-pushed`)."""
        return {
            "tag": self.tag,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "workload": self.build.workload,
            "build": self.build.variant,
            "signer": self.signer,
        }


@dataclass(frozen=True)
class SignatureRecord:
    digest: str
    key_id: str
    signer: str  # as recorded at push time; a verdict never rests on it
    payload: bytes
    signature: str
    signed_at: float


@dataclass(frozen=True)
class SignatureStatus:
    """`org` (verifies with the org key), `untrusted` (signed, but not by the org) or `unsigned`."""

    status: str
    detail: str
    key_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key_ids": list(self.key_ids)}


@dataclass(frozen=True)
class HistoryEntry:
    time: float
    tag: str
    old_digest: str | None
    new_digest: str
    build: Build
    signer: str | None
    actor: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "build": asdict(self.build)}


class ImageStore:
    """The store under `root`; `readonly` (as pods open it) never creates or changes anything."""

    def __init__(self, root: Path, *, readonly: bool = False) -> None:
        self.root = root
        self.path = root / STORE_FILE
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise ImageStoreError(f"no image store at {root}")
            self._db: SqliteFile | None = None
        else:
            self._db = SqliteFile(self.path, SCHEMA)

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if self._db is not None:
            with self._db.connect() as conn:
                if write:  # take the write lock up front: read-then-update is one step
                    conn.execute("BEGIN IMMEDIATE")
                yield conn
            return
        if write:
            raise ImageStoreError("the image store is open read-only")
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error as exc:
            raise ImageStoreError(f"cannot open the image store at {self.root}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        except sqlite3.Error as exc:
            raise ImageStoreError(f"cannot read the image store at {self.root}: {exc}") from exc
        finally:
            conn.close()

    # -- reading -------------------------------------------------------------
    def lookup(self, tag: str) -> Resolved | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT t.tag, t.digest, t.updated_at, m.workload, m.variant"
                " FROM tags t JOIN manifests m USING (digest) WHERE t.tag = ?",
                (tag,),
            ).fetchone()
        if row is None:
            return None
        return Resolved(row["tag"], row["digest"], Build(row["workload"], row["variant"]), row["updated_at"])

    def resolve(self, tag: str) -> Resolved:
        found = self.lookup(tag)
        if found is None:
            raise ImageNotFound(f"image {tag} is not in the image store ({self.root})")
        return found

    def tags(self) -> list[Resolved]:
        with self._connect() as conn:
            names = [r["tag"] for r in conn.execute("SELECT tag FROM tags ORDER BY tag")]
        return [self.resolve(name) for name in names]

    def history(self, tag: str | None = None) -> list[HistoryEntry]:
        query = "SELECT * FROM history" + (" WHERE tag = ?" if tag else "") + " ORDER BY id"
        with self._connect() as conn:
            rows = conn.execute(query, (tag,) if tag else ()).fetchall()
        return [
            HistoryEntry(
                r["time"],
                r["tag"],
                r["old_digest"],
                r["new_digest"],
                Build(r["workload"], r["variant"]),
                r["signer"],
                r["actor"],
                r["reason"],
            )
            for r in rows
        ]

    def signatures(self, digest: str) -> list[SignatureRecord]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM signatures WHERE digest = ? ORDER BY signed_at", (digest,)
            ).fetchall()
        return [
            SignatureRecord(
                r["digest"], r["key_id"], r["signer"], bytes(r["payload"]), r["signature"], r["signed_at"]
            )
            for r in rows
        ]

    def signature_status(self, ref: str, digest: str, org_key: ec.EllipticCurvePublicKey) -> SignatureStatus:
        """Verify every signature stored for `digest` with the org's public key."""
        from trustusbank.images.signing import claimed_creator, verify

        records = self.signatures(digest)
        if not records:
            return SignatureStatus("unsigned", "no signature is stored for this digest")
        for record in records:
            if verify(digest, record.signature, record.payload, org_key, ref):
                return SignatureStatus("org", "verified with the org public key", (record.key_id,))
        claims = sorted({claimed_creator(r.payload) or "nobody" for r in records})
        return SignatureStatus(
            "untrusted",
            f"{len(records)} signature(s), none verifies with the org public key (payload claims: "
            f"{', '.join(claims)})",
            tuple(r.key_id for r in records),
        )

    # -- writing -------------------------------------------------------------
    def retag(
        self,
        tag: str,
        build: Build,
        *,
        signer: Signer | None,
        actor: str,
        reason: str,
        now: float | None = None,
    ) -> Pushed:
        """Push `build` under `tag` (signed by `signer`, if any): the tag moves, the old digest is kept
        in the history. The digest is computed from the build's bytes at push time."""
        digest = build.digest()
        signed = signer.sign(tag, digest) if signer is not None else None
        at = time.time() if now is None else now
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT digest FROM tags WHERE tag = ?", (tag,)).fetchone()
            old = row["digest"] if row else None
            known = conn.execute(
                "SELECT workload, variant FROM manifests WHERE digest = ?", (digest,)
            ).fetchone()
            if known is not None and (known["workload"], known["variant"]) != (build.workload, build.variant):
                raise ImageStoreError(
                    f"{digest} is already stored as {known['workload']} ({known['variant']})"
                )
            conn.execute(
                "INSERT OR IGNORE INTO manifests VALUES (?, ?, ?, ?)",
                (digest, build.workload, build.variant, at),
            )
            if signed is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO signatures VALUES (?, ?, ?, ?, ?, ?)",
                    (digest, signed.key_id, signed.signer, signed.payload, signed.signature, at),
                )
            conn.execute(
                "INSERT INTO tags VALUES (?, ?, ?) ON CONFLICT(tag) DO UPDATE SET digest = ?, updated_at = ?",
                (tag, digest, at, digest, at),
            )
            conn.execute(
                "INSERT INTO history (time, tag, old_digest, new_digest, workload, variant, signer, actor,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    at,
                    tag,
                    old,
                    digest,
                    build.workload,
                    build.variant,
                    signed.signer if signed else None,
                    actor,
                    reason,
                ),
            )
        return Pushed(tag, old, digest, build, signed.signer if signed else None)
