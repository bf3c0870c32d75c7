"""`up` fills the store from deploy/; a pod pulls its tag, and only the bytes that match the digest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trustusbank.cluster.layout import DEFENCE_DIR
from trustusbank.images.pull import pull
from trustusbank.images.signing import Keys
from trustusbank.images.store import IMAGE_ENV, IMAGE_STORE_ENV, Build, ImageStore, ImageStoreError
from trustusbank.manifests import Bundle, load_bundle
from trustusbank.manifests.kagent.controller import AGENT_IMAGE, expand
from trustusbank.paths import deploy_dir
from trustusbank.runtime.image_seed import image_builds, seed

CONVERTER = "localhost:5001/acme-fx/currency-converter:1.0.0"


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    deploy = deploy_dir()
    return expand(load_bundle(deploy, exclude=[deploy / DEFENCE_DIR]))


def test_every_deployment_image_maps_to_its_default_build(bundle: Bundle) -> None:
    builds = image_builds(bundle)
    assert builds[CONVERTER] == Build("currency-converter", "clean")
    assert builds[AGENT_IMAGE] == Build("agent", "default")
    assert builds["localhost:5001/trustusbank/agentregistry:1.0.0"] == Build("agentregistry", "default")
    assert all(tag.startswith("localhost:5001/") for tag in builds)


def test_seed_adds_missing_tags_and_keeps_pushed_ones(tmp_path: Path, bundle: Bundle) -> None:
    store, keys = ImageStore(tmp_path / "images"), Keys(tmp_path / "signing", tmp_path / "images")
    first = seed(store, keys, bundle)
    assert {p.tag for p in first.added} == set(image_builds(bundle))
    assert not first.kept
    store.retag(
        CONVERTER, Build("currency-converter", "real-rugpull"), signer=keys.red_team(), actor="m", reason="r"
    )
    again = seed(store, keys, bundle)
    assert not again.added
    assert not again.rebuilt
    assert CONVERTER in again.kept
    assert store.resolve(CONVERTER).build.variant == "real-rugpull"  # a registry keeps what was pushed


def test_a_pod_runs_what_its_tag_resolves_to(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    env = {IMAGE_STORE_ENV: str(store.root), IMAGE_ENV: CONVERTER}
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
        pull("currency-converter", {IMAGE_STORE_ENV: str(store.root)})


def test_bytes_that_do_not_match_the_digest_are_not_run(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    store.retag(CONVERTER, Build("currency-converter", "clean"), signer=None, actor="a", reason="r")
    with sqlite3.connect(store.path) as conn:  # the record now names other bytes than the build's
        for table in ("manifests", "tags"):
            conn.execute(f"UPDATE {table} SET digest = substr(digest, 1, 70) || 'x'")
    with pytest.raises(ImageStoreError, match="hash to"):
        pull("currency-converter", {IMAGE_STORE_ENV: str(store.root), IMAGE_ENV: CONVERTER})
