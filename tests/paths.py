"""Where the repository's files are, for tests at any depth of the tree."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DEPLOY = REPO / "deploy"
FIXTURES = TESTS / "fixtures"
