"""The image store: tags move, digests follow the bytes, every push is kept, across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trustusbank.images.signing import Keys
from trustusbank.images.store import Build, ImageNotFound, ImageStore, ImageStoreError

TAG = "localhost:5001/acme-fx/currency-converter:1.0.0"
CLEAN = Build("currency-converter", "clean")
RUG_PULL = Build("currency-converter", "real-rugpull")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "signing", tmp_path / "images")


def test_the_rug_pull_moves_the_digest_not_the_tag(store: ImageStore, keys: Keys) -> None:
    first = store.retag(TAG, CLEAN, signer=keys.org(), actor="alice", reason="release")
    assert first.old_digest is None
    assert first.changed
    assert store.resolve(TAG).build == CLEAN
    pulled = store.retag(TAG, RUG_PULL, signer=keys.red_team(), actor="mallory", reason="1.0.0 hotfix")
    assert pulled.tag == TAG
    assert pulled.old_digest == first.new_digest
    assert pulled.new_digest != first.new_digest
    assert pulled.new_digest == RUG_PULL.digest()
    now = store.resolve(TAG)
    assert (now.tag, now.digest, now.build) == (TAG, pulled.new_digest, RUG_PULL)
    assert [t.tag for t in store.tags()] == [TAG]


def test_history_keeps_every_push_with_who_and_why(store: ImageStore, keys: Keys) -> None:
    store.retag(TAG, CLEAN, signer=keys.org(), actor="alice", reason="release", now=100.0)
    store.retag(TAG, RUG_PULL, signer=keys.red_team(), actor="mallory", reason="hotfix", now=200.0)
    store.retag(TAG, CLEAN, signer=keys.org(), actor="alice", reason="rollback", now=300.0)
    store.retag("localhost:5001/other:1", Build.default("fx-api"), signer=None, actor="bob", reason="x")
    history = store.history(TAG)
    assert [(h.time, h.actor, h.reason, h.build.variant) for h in history] == [
        (100.0, "alice", "release", "clean"),
        (200.0, "mallory", "hotfix", "real-rugpull"),
        (300.0, "alice", "rollback", "clean"),
    ]
    assert history[0].old_digest is None
    assert history[1].old_digest == history[0].new_digest == history[2].new_digest
    assert [h.signer for h in history] == ["trustusbank org", "acme-fx red team", "trustusbank org"]
    assert len(store.history()) == 4


def test_unknown_tags_and_builds_are_errors(store: ImageStore) -> None:
    assert store.lookup(TAG) is None
    with pytest.raises(ImageNotFound, match=r"currency-converter:1\.0\.0"):
        store.resolve(TAG)
    with pytest.raises(ImageStoreError, match="no build 'evil'"):
        Build("currency-converter", "evil")


def test_read_only_store_reads_and_refuses_writes(tmp_path: Path, store: ImageStore) -> None:
    with pytest.raises(ImageStoreError, match="no image store"):
        ImageStore(tmp_path / "nowhere", readonly=True)
    store.retag(TAG, CLEAN, signer=None, actor="a", reason="r")
    reader = ImageStore(store.root, readonly=True)
    assert reader.resolve(TAG).build == CLEAN
    with pytest.raises(ImageStoreError, match="read-only"):
        reader.retag(TAG, RUG_PULL, signer=None, actor="a", reason="r")
    assert ImageStore(store.root).resolve(TAG).build == CLEAN


def test_pushes_from_another_process_are_seen_and_persist(store: ImageStore) -> None:
    store.retag(TAG, CLEAN, signer=None, actor="a", reason="release")
    code = (
        "import sys; from pathlib import Path;"
        "from trustusbank.images.store import Build, ImageStore;"
        "s = ImageStore(Path(sys.argv[1]));"
        "b = Build('currency-converter', 'mock-rugpull');"
        "p = s.retag(sys.argv[2], b, signer=None, actor='b', reason='r');"
        "print(p.old_digest)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(store.root), TAG], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == CLEAN.digest()
    reopened = ImageStore(store.root)
    assert reopened.resolve(TAG).build == Build("currency-converter", "mock-rugpull")
    assert [h.actor for h in reopened.history(TAG)] == ["a", "b"]
