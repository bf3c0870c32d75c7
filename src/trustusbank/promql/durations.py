"""Prometheus durations (`5m`, `1h30m`, `500ms`), as rule files and PromQL write them."""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_PART = re.compile(r"(\d+)(ms|[smhdwy])")
PATTERN = r"(?:\d+(?:ms|[smhdwy]))+"
_WHOLE = re.compile(PATTERN)


def parse_duration(text: str) -> float:
    """Seconds in `text`; units must come largest first and at most once each, as Prometheus demands."""
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h30m)")
    seen: list[float] = []
    total = 0.0
    for number, unit in _PART.findall(text):
        size = UNITS[unit]
        if seen and size >= seen[-1]:
            raise ValueError(f"not a duration: {text!r} (units must be in decreasing order, each once)")
        seen.append(size)
        total += int(number) * size
    return total


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of a whole number of milliseconds."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit in ("y", "w", "d", "h", "m", "s", "ms"):
        size = round(UNITS[unit] * 1000)
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
