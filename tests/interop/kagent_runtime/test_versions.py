"""The kagent runtime these tests drive is the one requirements.txt pins, so what they claim holds for it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.interop.kagent_runtime.support import kagent_python, kagent_versions

REQUIREMENTS = Path(__file__).with_name("requirements.txt")


def pins() -> dict[str, str]:
    found = {}
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_the_installed_runtime_is_the_pinned_one() -> None:
    pinned = pins()
    assert set(pinned) == {"kagent-adk", "google-adk", "a2a-sdk"}
    installed = kagent_versions(kagent_python())
    assert {name: installed[name] for name in pinned} == pinned
    assert int(installed["mcp"].split(".")[0]) == 1, "google-adk 1.x speaks MCP through the mcp 1.x SDK"
