"""Image digests follow the bytes of a build's modules, and nothing else."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from trustusbank.images.digest import build_digest
from trustusbank.workloads.registry import WORKLOADS, Workload


def fake_workload(modules: tuple[str, ...]) -> Workload:
    return Workload("fake", "ns", 1, "fake", lambda w, c: None, modules)  # type: ignore[arg-type,return-value]


def test_new_bytes_new_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fakeimage_a.py").write_text("ANSWER = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    workload = fake_workload(("fakeimage_a",))
    first = build_digest(workload, "default")
    assert first == build_digest(workload, "default")
    (tmp_path / "fakeimage_a.py").write_text("ANSWER = 2\n")
    assert build_digest(workload, "default") != first


def test_missing_module_is_an_error() -> None:
    with pytest.raises(LookupError, match="no_such_module_here"):
        build_digest(fake_workload(("no_such_module_here",)), "default")


def test_converter_builds_share_a_tag_not_a_digest() -> None:
    converter = WORKLOADS["currency-converter"]
    digests = {variant: build_digest(converter, variant) for variant in converter.variants}
    assert len(set(digests.values())) == 3
    assert all(d.startswith("sha256:") and len(d) == 71 for d in digests.values())
    assert "trustusbank.workloads.vendor.exfil_channel" not in converter.image_modules("clean")
