"""`up` fills the image store from deploy/: every Deployment's tag -> its workload's build."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustusbank.cluster.layout import DEFENCE_DIR
from trustusbank.images.signing import Keys
from trustusbank.images.store import Build, ImageStore
from trustusbank.manifests.bundle import Bundle, load_bundle
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
