"""An in-memory time-series store with Prometheus' staleness, for the few metrics the rules read.

Samples are kept per label set in time order. When a series disappears from its
target's scrape (or the target stops answering), a staleness marker is appended,
as Prometheus does, so an instant selector stops returning it at once instead of
for the whole lookback window.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from trustusbank.promql.ast import NAME_LABEL

Labels = tuple[tuple[str, str], ...]
STALE = math.nan  # marker value; counters and gauges we store are never NaN themselves


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def label(labels: Labels, name: str) -> str:
    return next((v for k, v in labels if k == name), "")


def without_name(labels: Labels) -> Labels:
    return tuple((k, v) for k, v in labels if k != NAME_LABEL)


def is_stale(value: float) -> bool:
    return math.isnan(value)


@dataclass
class Series:
    labels: Labels
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    pruned: bool = False  # older samples were forgotten: the first one kept is not the series' birth

    def add(self, t: float, value: float) -> bool:
        """Append in time order; a sample at or before the last one is dropped (out of order)."""
        if self.times and t <= self.times[-1]:
            return False
        self.times.append(t)
        self.values.append(value)
        return True

    def at(self, t: float, lookback: float) -> float | None:
        """The newest sample in (t - lookback, t], unless it is a staleness marker."""
        index = bisect.bisect_right(self.times, t) - 1
        if index < 0 or self.times[index] <= t - lookback:
            return None
        value = self.values[index]
        return None if is_stale(value) else value

    def window(self, start: float, end: float) -> list[tuple[float, float]]:
        """Samples in (start, end], staleness markers left out (Prometheus 3's left-open ranges)."""
        lo = bisect.bisect_right(self.times, start)
        hi = bisect.bisect_right(self.times, end)
        return [(t, v) for t, v in zip(self.times[lo:hi], self.values[lo:hi], strict=True) if not is_stale(v)]

    def last_increase(self) -> float | None:
        """When this counter last went up: a higher value, a restart that counted again, or its birth."""
        points = [(t, v) for t, v in zip(self.times, self.values, strict=True) if not is_stale(v)]
        for i in range(len(points) - 1, -1, -1):
            t, value = points[i]
            if i == 0:
                return None if self.pruned else t
            previous = points[i - 1][1]
            if value > previous or (value < previous and value > 0):
                return t
        return None

    def prune(self, before: float) -> None:
        cut = bisect.bisect_left(self.times, before)
        if cut:
            self.pruned = True
            del self.times[:cut]
            del self.values[:cut]


class SeriesStore:
    def __init__(self) -> None:
        self._by_metric: dict[str, dict[Labels, Series]] = {}

    def append(self, labels: Labels, t: float, value: float) -> None:
        metric = label(labels, NAME_LABEL)
        series = self._by_metric.setdefault(metric, {}).get(labels)
        if series is None:
            series = self._by_metric[metric][labels] = Series(labels)
        series.add(t, value)

    def mark_stale(self, labels: Labels, t: float) -> None:
        series = self._by_metric.get(label(labels, NAME_LABEL), {}).get(labels)
        if series is not None and series.values and not is_stale(series.values[-1]):
            series.add(t, STALE)

    def series(self, metric: str | None) -> Iterator[Series]:
        if metric is not None:
            yield from self._by_metric.get(metric, {}).values()
            return
        for by_labels in self._by_metric.values():
            yield from by_labels.values()

    def prune(self, before: float) -> None:
        """Forget samples older than `before`, and series left with none."""
        for metric, by_labels in list(self._by_metric.items()):
            for labels, series in list(by_labels.items()):
                series.prune(before)
                if not series.times:
                    del by_labels[labels]
            if not by_labels:
                del self._by_metric[metric]

    def snapshot(self) -> SeriesStore:
        """A copy to read elsewhere (a long query in a worker thread) while this one keeps changing."""
        copy = SeriesStore()
        for metric, by_labels in self._by_metric.items():
            copy._by_metric[metric] = {
                labels: Series(labels, series.times.copy(), series.values.copy(), series.pruned)
                for labels, series in by_labels.items()
            }
        return copy

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_metric.values())
