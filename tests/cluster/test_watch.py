"""The manifest watch every node proxy and waypoint reads: a read that races `delete` is retried."""

from __future__ import annotations

from pathlib import Path

import pytest

import trustusbank.manifests.bundle as bundle_module
from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.watch import ManifestWatch, fingerprint
from trustusbank.manifests.manifest import ManifestError
from trustusbank.manifests.yaml_source import yaml_files
from trustusbank.runtime.apply import apply

DEFENCE = DEPLOY / "08-defence"


def _applied(tmp_path: Path) -> ClusterFiles:
    files = ClusterFiles(tmp_path / "state")
    apply(files, DEPLOY, [DEFENCE])
    return files


def test_a_file_deleted_between_listing_and_reading_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `policies off` deletes the set file by file while a node proxy reloads."""
    files = _applied(tmp_path)
    victim = files.applied / "deny-bank-to-attacker.yaml"
    deleted: list[Path] = []

    def listing_then_delete(path: Path) -> list[Path]:
        found = yaml_files(path)
        if victim in found and not deleted:
            victim.unlink()  # the writer wins the race: listed, then gone
            deleted.append(victim)
        return found

    monkeypatch.setattr(bundle_module, "yaml_files", listing_then_delete)
    loaded = ManifestWatch(DEPLOY, files).load()

    assert deleted == [victim]
    names = {(m.namespace, m.name) for m in loaded.objects if m.kind == "AuthorizationPolicy"}
    assert ("external-attacker", "deny-bank-to-attacker") not in names
    assert ("trustusbank-bank-vendors", "default-deny") in names


def test_a_broken_file_that_stays_broken_is_still_an_error(tmp_path: Path) -> None:
    files = _applied(tmp_path)
    (files.applied / "broken.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(ManifestError, match=r"broken\.yaml"):
        ManifestWatch(DEPLOY, files).load()


def test_the_fingerprint_skips_a_file_that_vanishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _applied(tmp_path)
    victim = files.applied / "default-deny.yaml"
    real_stat = Path.stat
    gone: list[Path] = []

    def stat(self: Path, **kwargs: bool) -> object:
        if self == victim and not gone:
            gone.append(victim)
            victim.unlink()  # listed by rglob, deleted before its stat
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    seen = fingerprint([files.applied])
    assert str(victim) not in {path for path, _, _ in seen}
    assert len(seen) == len(list(files.applied.glob("*.yaml")))


def test_a_write_that_settles_while_loading_is_one_reload_not_two(tmp_path: Path) -> None:
    """`apply` writes `x.tmp` then renames it: a reload that saw the temporary file and then
    loaded the settled set must not report a change again (a waypoint would rebuild its state)."""
    files = _applied(tmp_path)
    watch = ManifestWatch(DEPLOY, files)
    temporary = files.applied / "late.tmp"
    temporary.write_text("kind: ConfigMap\n")
    assert watch.changed()  # sees the temporary file
    temporary.unlink()  # the write settled before the read
    watch.load()

    assert not watch.changed()
