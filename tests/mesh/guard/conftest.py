from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.mesh.guard.client import Guard, guard_at


@pytest.fixture
async def guard(tmp_path: Path) -> AsyncIterator[Guard]:
    async with guard_at(tmp_path) as served:
        yield served
