"""The dashboard's time range and refresh, spelled in the URL as Grafana spells them.

`?from=now-15m&to=now` (relative to the moment the page is drawn) or epoch milliseconds
(`?from=1700000000000`), and `?refresh=10s`, so a Grafana link's query string works here too.
A range is resolved once, to whole milliseconds, when the page is drawn: the charts' JSON is
asked for that same absolute range, so the chart and the table beneath it show one moment.
PromQL is asked on a grid aligned to the step (as Grafana aligns it), which may end a few
seconds before the range does; evidence is read over the range itself, to its last moment.
The step keeps every query near `POINTS` points whatever the range: the alert evaluator
answers one query at a time, and alerting waits for none of them.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from trustusbank.alerts.service import HISTORY
from trustusbank.errors import ConfigError
from trustusbank.promql.durations import format_duration, parse_duration

DEFAULT_FROM = "now-15m"
DEFAULT_TO = "now"
DEFAULT_REFRESH = "30s"  # what the Grafana dashboard in Kubernetes mode refreshes at
PRESETS = ("5m", "15m", "30m")  # the alert evaluator keeps 30 minutes of samples
REFRESHES = ("off", "10s", "30s", "1m")
SHORTEST_REFRESH = 5.0  # a reload costs the evaluator a few range queries
POINTS = 240
KEPT = HISTORY

_RELATIVE = re.compile(r"now(?:-(?P<ago>\w+))?")


class BadRange(ConfigError, ValueError):
    """A `from`, `to` or `refresh` that cannot be read; the message names which and why."""


def _moment(name: str, raw: str, now: float) -> float:
    text = raw.strip()
    found = _RELATIVE.fullmatch(text)
    if found:
        try:
            return now - (parse_duration(found["ago"]) if found["ago"] else 0.0)
        except ValueError as exc:
            raise BadRange(f"{name}={raw!r}: {exc}") from None
    if text.isdigit():
        return int(text) / 1000.0
    raise BadRange(f"{name}={raw!r}: give now, now-<duration> (now-15m) or epoch milliseconds")


def refresh_seconds(raw: str) -> float | None:
    """How often the page reloads itself; None for `off` (or empty)."""
    text = raw.strip()
    if text in ("", "off"):
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise BadRange(f"refresh={raw!r}: {exc}") from None
    if seconds < SHORTEST_REFRESH:
        raise BadRange(f"refresh={raw!r}: at least {format_duration(SHORTEST_REFRESH)}")
    return seconds


@dataclass(frozen=True)
class TimeRange:
    since: float  # the range asked for, epoch seconds (whole milliseconds)
    until: float
    start: float  # the PromQL grid: multiples of step, start <= since, end <= until
    end: float
    step: float
    raw_from: str
    raw_to: str
    refresh: str  # as given ("off" when none)
    now: float  # when it was resolved

    @property
    def span(self) -> float:
        return self.end - self.start

    @property
    def beyond_kept(self) -> bool:
        """Whether the range reaches further back than the evaluator keeps samples."""
        return self.now - self.since > KEPT + self.step

    def absolute(self) -> dict[str, str]:
        """The URL parameters that name this very range (epoch milliseconds)."""
        return {"from": str(round(self.since * 1000)), "to": str(round(self.until * 1000))}


def step_for(span: float) -> float:
    """Whole seconds between points, so that `span` holds at most about `POINTS` of them."""
    return float(max(1, math.ceil(span / POINTS)))


def resolve(params: Mapping[str, str], now: float | None = None) -> TimeRange:
    """The range a request names (Grafana's defaults where it names none), aligned to its step."""
    at = time.time() if now is None else now
    raw_from = params.get("from") or DEFAULT_FROM
    raw_to = params.get("to") or DEFAULT_TO
    refresh = params.get("refresh", DEFAULT_REFRESH)
    refresh_seconds(refresh)
    since = round(_moment("from", raw_from, at), 3)
    until = round(_moment("to", raw_to, at), 3)
    if until <= since:
        raise BadRange(f"from={raw_from!r} is not before to={raw_to!r}")
    step = step_for(until - since)
    start = math.floor(since / step) * step
    end = max(math.floor(until / step) * step, start + step)
    return TimeRange(since, until, start, end, step, raw_from, raw_to, refresh.strip() or "off", at)
