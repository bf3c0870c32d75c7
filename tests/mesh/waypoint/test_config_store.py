"""The waypoint's configuration when a file it reads is garbled, emptied or no longer valid.

Real files: a copy of deploy/ (so the test may damage it), read by the waypoint's store.
A change that does not load is refused and the configuration in force stays, the very same
objects, until a good one comes; a waypoint that never loaded one refuses to start.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.manifests.manifest import ManifestError
from trustusbank.mesh.waypoint.config_store import REFUSED, ConfigStore

GATEWAY = "trustusbank-platform/trustusbank-agentgw"
ALLOWLISTS = Path("06-agentgateway/mcp-allowlists.yaml")


@pytest.fixture
def deploy(tmp_path: Path) -> Path:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    return copy


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace("kind:", "kind: [", 1),  # not YAML
        lambda text: text.replace("matchExpressions:", "matchExpressions: 7 #", 1),  # not a valid policy
        lambda text: "",  # emptied: a write cut short
    ],
    ids=["garbled", "invalid", "emptied"],
)
def test_a_change_that_does_not_load_keeps_the_configuration_in_force(
    deploy: Path, tmp_path: Path, damage: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    store = ConfigStore(deploy, ClusterFiles(tmp_path / "state"), GATEWAY)
    store.reload_if_changed()
    config, authz = store.config(), store.authz()
    target = deploy / ALLOWLISTS
    good = target.read_text()
    assert "matchExpressions:" in good
    target.write_text(damage(good))

    with caplog.at_level(logging.ERROR):
        store.reload_if_changed()
    assert store.config() is config
    assert store.authz() is authz
    assert store.refused is not None
    assert store.refused.startswith(REFUSED)
    assert store.refused in caplog.text

    target.write_text(good)
    store.reload_if_changed()
    assert store.refused is None
    assert store.config() is not config  # the mended set, loaded afresh


def test_a_waypoint_that_never_loaded_a_configuration_does_not_start(deploy: Path, tmp_path: Path) -> None:
    (deploy / ALLOWLISTS).write_text("")
    store = ConfigStore(deploy, ClusterFiles(tmp_path / "state"), GATEWAY)
    with pytest.raises(ManifestError, match="empty: a write cut short"):
        store.reload_if_changed()
