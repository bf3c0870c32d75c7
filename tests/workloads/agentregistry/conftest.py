"""An image store as `up` leaves it, for the registry to read running digests and signatures from."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustusbank.images.signing import Keys
from trustusbank.images.store import ImageStore
from trustusbank.manifests.bundle import load_bundle
from trustusbank.paths import deploy_dir
from trustusbank.runtime.image_seed import seed


@pytest.fixture
def images(tmp_path: Path) -> tuple[ImageStore, Keys]:
    """Every deployed tag on its org-signed default build, as `up` seeds the store."""
    store, keys = ImageStore(tmp_path / "images"), Keys(tmp_path / "signing", tmp_path / "images")
    seed(store, keys, load_bundle(deploy_dir()))
    return store, keys
