"""Image digests follow the bytes of a build's modules, and nothing else."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from trustusbank.images.builds import BUILDS, ImageBuilds, package_modules
from trustusbank.images.digest import build_digest


def fake_workload(modules: tuple[str, ...]) -> ImageBuilds:
    return ImageBuilds("fake", modules)


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
    converter = BUILDS["currency-converter"]
    digests = {variant: build_digest(converter, variant) for variant in converter.variants}
    assert len(set(digests.values())) == 3
    assert all(d.startswith("sha256:") and len(d) == 71 for d in digests.values())
    assert "trustusbank.workloads.vendor.exfil_channel" not in converter.image_modules("clean")


def test_whole_package_images_list_their_modules_without_importing_them() -> None:
    modules = package_modules("trustusbank.agents.scripted")
    assert "trustusbank.agents.scripted.planner" in modules
    assert modules == tuple(sorted(modules))
    with pytest.raises(LookupError, match="no_such_package"):
        package_modules("trustusbank.no_such_package")
