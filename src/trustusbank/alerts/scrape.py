"""Scrape the targets into the series store, as Prometheus' scrape loop does.

Each sample gets the target's `job` and `instance` (a conflicting exposed label is
kept as `exported_<name>`, Prometheus' default). A series missing from a target's
latest scrape, and every series of a target that did not answer, is marked stale
at once, so a restarted node proxy's old counters stop counting as present.
Scrapes never go through the mesh: the client ignores proxy settings.

Samples are stamped when the target's answer arrives (Prometheus stamps the start of the
scrape): a sample is then never older than the counter value it carries, so "did this
counter grow after time T" has no race with a scrape in flight at T.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from trustusbank.alerts.exposition import ExpositionError, samples
from trustusbank.alerts.targets import Target
from trustusbank.http_server import client_limits
from trustusbank.promql.ast import NAME_LABEL
from trustusbank.promql.series import Labels, SeriesStore, labels_of

TARGET_LABELS = ("job", "instance")


@dataclass
class TargetHealth:
    target: Target
    up: bool = False
    last_scrape: float | None = None
    last_error: str | None = None
    samples: int = 0
    seen: set[Labels] = field(default_factory=set)

    def to_dict(self) -> dict[str, object]:
        return {
            "job": self.target.job,
            "url": self.target.url,
            "up": self.up,
            "last_scrape": self.last_scrape,
            "last_error": self.last_error,
            "samples": self.samples,
        }


class Scraper:
    def __init__(self, store: SeriesStore, wanted: set[str], timeout: float = 2.0) -> None:
        self.store = store
        self.wanted = wanted
        self.timeout = timeout
        self.health: dict[Target, TargetHealth] = {}
        # trust_env: the pod's capture (ALL_PROXY) carries every scrape, as it carries all its traffic.
        self._client = httpx.AsyncClient(trust_env=True, timeout=timeout, limits=client_limits())

    async def close(self) -> None:
        await self._client.aclose()

    async def scrape(self, targets: list[Target], t: float | None = None) -> None:
        """Scrape every target concurrently; samples are stamped with `t`, or when each answer came."""
        for gone in set(self.health) - set(targets):
            self._stale(self.health.pop(gone), time.time() if t is None else t)
        await asyncio.gather(*(self._one(target, t) for target in targets))

    async def _one(self, target: Target, t: float | None) -> None:
        health = self.health.setdefault(target, TargetHealth(target))
        try:
            response = await self._client.get(target.url, headers={"Accept": "text/plain;version=0.0.4"})
            response.raise_for_status()
            parsed = list(samples(response.text, self.wanted))
        except (httpx.HTTPError, ExpositionError) as exc:
            at = time.time() if t is None else t
            health.last_scrape = at
            health.up, health.last_error, health.samples = False, f"{type(exc).__name__}: {exc}", 0
            self._stale(health, at)
            return
        at = time.time() if t is None else t
        health.last_scrape = at
        seen: set[Labels] = set()
        for name, raw, value in parsed:
            labels = dict(raw)
            for key in TARGET_LABELS:
                if key in labels:
                    labels[f"exported_{key}"] = labels.pop(key)
            labels.update({NAME_LABEL: name, "job": target.job, "instance": target.instance})
            key_labels = labels_of(labels)
            self.store.append(key_labels, at, value)
            seen.add(key_labels)
        for gone in health.seen - seen:
            self.store.mark_stale(gone, at)
        health.up, health.last_error, health.samples, health.seen = True, None, len(seen), seen

    def _stale(self, health: TargetHealth, at: float) -> None:
        for labels in health.seen:
            self.store.mark_stale(labels, at)
        health.seen = set()
