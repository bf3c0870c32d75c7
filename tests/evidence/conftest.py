"""A scratch cluster directory holding the three acts' evidence, as the components write it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.evidence.story import Story
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence import EvidenceStore


@pytest.fixture
def files(tmp_path: Path) -> ClusterFiles:
    return ClusterFiles(tmp_path / "state")


@pytest.fixture
def story(files: ClusterFiles, tmp_path: Path) -> Iterator[Story]:
    written = Story(files).all_acts(tmp_path)
    yield written
    written.close()


@pytest.fixture
def store(files: ClusterFiles) -> EvidenceStore:
    return EvidenceStore.of(files)
