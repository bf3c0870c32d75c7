"""`apply` installs only what it validated: a file replaced while it was being applied is refused
whole, and the files the node proxies read are left as they were (a file cut short: tests/cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import trustusbank.runtime.apply as apply_module
from tests.paths import DEPLOY
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.manifests.manifest import ManifestError
from trustusbank.runtime.apply import apply

DEFENCE = DEPLOY / "08-defence"
FILE = "deny-bank-to-attacker.yaml"


def snapshot(files: ClusterFiles) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in files.applied.iterdir()}


def events(files: ClusterFiles) -> int:
    return len(files.events.read_text().splitlines()) if files.events.exists() else 0


def test_a_source_replaced_while_it_is_applied_is_refused_and_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = ClusterFiles(tmp_path / "state")
    apply(files, DEPLOY, [DEFENCE])
    before, logged = snapshot(files), events(files)
    source = tmp_path / FILE
    source.write_text((DEFENCE / FILE).read_text().replace('"trustusbank-platform"', '"trustusbank-*"'))
    validate = apply_module.load_bundle

    def validated_then_edited(*args: Any, **kwargs: Any) -> Any:
        bundle = validate(*args, **kwargs)
        source.write_text("spec: {action: ALLOW\n")  # an editor saving a half-done edit, mid-apply
        return bundle

    monkeypatch.setattr(apply_module, "load_bundle", validated_then_edited)
    with pytest.raises(ManifestError, match=f"{source}: changed while it was being applied"):
        apply(files, DEPLOY, [source])
    assert snapshot(files) == before
    assert events(files) == logged  # no change recorded that did not happen
