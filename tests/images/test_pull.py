"""A pod pulls its tag, and runs only the bytes that match the digest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trustusbank.env import IMAGE, IMAGE_STORE
from trustusbank.images.pull import pull
from trustusbank.images.store import Build, ImageStore, ImageStoreError

CONVERTER = "localhost:5001/acme-fx/currency-converter:1.0.0"


def test_a_pod_runs_what_its_tag_resolves_to(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    env = {IMAGE_STORE.name: str(store.root), IMAGE.name: CONVERTER}
    assert pull("currency-converter", {}) is None  # standalone: nothing to pull
    with pytest.raises(ImageStoreError, match="not in the image store"):
        pull("currency-converter", env)
    store.retag(CONVERTER, Build("currency-converter", "mock-rugpull"), signer=None, actor="m", reason="r")
    pulled = pull("currency-converter", env)
    assert pulled is not None
    assert pulled.build.variant == "mock-rugpull"
    with pytest.raises(ImageStoreError, match="not fx-api"):
        pull("fx-api", env)
    with pytest.raises(ImageStoreError, match="TRUSTUSBANK_IMAGE"):
        pull("currency-converter", {IMAGE_STORE.name: str(store.root)})


def test_bytes_that_do_not_match_the_digest_are_not_run(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    store.retag(CONVERTER, Build("currency-converter", "clean"), signer=None, actor="a", reason="r")
    with sqlite3.connect(store.path) as conn:  # the record now names other bytes than the build's
        for table in ("manifests", "tags"):
            conn.execute(f"UPDATE {table} SET digest = substr(digest, 1, 70) || 'x'")
    with pytest.raises(ImageStoreError, match="hash to"):
        pull("currency-converter", {IMAGE_STORE.name: str(store.root), IMAGE.name: CONVERTER})
