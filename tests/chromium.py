"""Debian's chromium for the browser tests: its path, or a skip that says why (a failure under CI,
whose `.ci/run` installs it), and whether its sandbox can be used (not as root)."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium_or_skip() -> str:
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(".ci/run installs Debian's chromium: CI must run the browser tests")
        pytest.skip("no chromium here (Debian: apt-get install chromium)")
    return executable


def sandbox() -> bool:
    """Chromium refuses its sandbox as root ("Running as root without --no-sandbox is not
    supported"), and CI runs as root; anyone else keeps it."""
    return os.geteuid() != 0
