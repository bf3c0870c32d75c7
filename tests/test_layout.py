"""The test tree mirrors the source tree, and only tests/system/ starts a cluster.

Kept as a test so that the layout stays what the README says it is: a reader who finds a
module finds its tests at the same path, and the minutes-long cluster tests stay in one
place that CI can schedule on their own.
"""

from __future__ import annotations

from pathlib import Path

from tests.paths import REPO, TESTS

SRC = REPO / "src" / "trustusbank"
# system/: everything that starts a cluster; interop/: another project's real runtime (kagent-adk)
# driven against ours, where the code under test is theirs and ours together.
NOT_MIRRORS = {"system", "interop", "browser", "fixtures", "__pycache__"}


def test_every_test_folder_mirrors_a_source_package() -> None:
    strays = []
    for folder in sorted(p for p in TESTS.rglob("*") if p.is_dir()):
        relative = folder.relative_to(TESTS)
        if NOT_MIRRORS & set(relative.parts) or not any(folder.glob("test_*.py")):
            continue
        if not (SRC / relative).is_dir():
            strays.append(str(relative))
    assert not strays, f"test folders with no src/trustusbank package of the same path: {strays}"


def test_only_system_tests_start_a_cluster() -> None:
    starters = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if "system" not in path.relative_to(TESTS).parts
        and path != Path(__file__).resolve()
        and _starts_a_cluster(path)
    ]
    assert not starters, f"these start an embedded cluster outside tests/system: {starters}"


def _starts_a_cluster(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return '"up", "--detach"' in text or "'up', '--detach'" in text
