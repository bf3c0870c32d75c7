"""agentgateway's local rate limit: a token bucket per policy attachment, per proxy.

The meaning of the CRD fields is the controller's translation (agentgateway
`controller/pkg/agentgateway/plugins/traffic_plugin.go`, `processLocalRateLimitTraffic`):
`maxTokens = requests + burst`, `tokensPerFill = requests`, `fillInterval = 1 unit`. The data
plane (`crates/agentgateway/src/http/localratelimit.rs`) starts the bucket full and refills it
in whole intervals, not continuously: after each full `unit`, `requests` tokens are added, up
to `maxTokens`. So `requests: 600, unit: Minutes, burst: 60` admits 660 at once, then 600 more
a minute later. An over-limit request is refused with 429 and the time to the next refill.

Not thread-safe: the waypoint calls it from one asyncio loop, where a plain counter is enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Sequence

from trustusbank.manifests.gateway.objects import LocalRateLimitSpec

RATE_LIMITED = "rate limited"  # the reason a request this limit refused is logged with

Clock = Callable[[], float]

UNIT_SECONDS: dict[str, float] = {"Seconds": 1.0, "Minutes": 60.0, "Hours": 3600.0}


class LocalRateLimit:
    """One bucket: `requests + burst` tokens, full at start, `requests` more after each `unit`."""

    __slots__ = ("_available", "_clock", "_interval", "_refill_at", "burst", "capacity", "requests", "unit")

    def __init__(
        self, requests: int, unit: str, burst: int | None = None, clock: Clock = time.monotonic
    ) -> None:
        if requests < 1:
            raise ValueError(f"requests must be at least 1, got {requests}")
        if unit not in UNIT_SECONDS:
            raise ValueError(f"unit must be one of {', '.join(UNIT_SECONDS)}, got {unit!r}")
        if burst is not None and burst < 0:
            raise ValueError(f"burst must not be negative, got {burst}")
        self.requests = requests
        self.unit = unit
        self.burst = burst
        self.capacity = requests + (burst or 0)
        self._interval = UNIT_SECONDS[unit]
        self._clock = clock
        self._available = self.capacity
        self._refill_at = clock() + self._interval

    def _refill(self, now: float) -> None:
        if now < self._refill_at:
            return
        intervals = int((now - self._refill_at) // self._interval) + 1
        self._refill_at += intervals * self._interval
        self._available = min(self.capacity, self._available + intervals * self.requests)

    @property
    def available(self) -> int:
        self._refill(self._clock())
        return self._available

    def try_acquire(self) -> bool:
        """Take one token if there is one; False means answer 429."""
        self._refill(self._clock())
        if self._available == 0:
            return False
        self._available -= 1
        return True

    def retry_after(self) -> float:
        """Seconds until a token is available again (0.0 when one is available now)."""
        now = self._clock()
        self._refill(now)
        return 0.0 if self._available else self._refill_at - now

    def __repr__(self) -> str:
        burst = f", burst={self.burst}" if self.burst is not None else ""
        return f"LocalRateLimit(requests={self.requests}, unit={self.unit!r}{burst})"


class LocalRateLimits:
    """The `local` list of one policy: a request passes only if every bucket has a token.

    As in agentgateway, buckets are tried in order and a token taken from an earlier bucket
    is not given back when a later one refuses.
    """

    __slots__ = ("limits",)

    def __init__(self, limits: Iterable[LocalRateLimit]) -> None:
        self.limits = tuple(limits)

    def try_acquire(self) -> bool:
        return all(limit.try_acquire() for limit in self.limits)

    def retry_after(self) -> float:
        return max((limit.retry_after() for limit in self.limits), default=0.0)

    def __repr__(self) -> str:
        return f"LocalRateLimits({list(self.limits)!r})"


def bucket(spec: LocalRateLimitSpec, clock: Clock = time.monotonic) -> LocalRateLimit:
    """The stateful bucket for one `traffic.rateLimit.local[]` entry."""
    return LocalRateLimit(spec.requests, spec.unit, spec.burst, clock)


class RateLimitBuckets:
    """The buckets of one waypoint, kept across configuration reloads.

    agentgateway updates only the policies whose content changed; an unrelated `apply`
    (another route, a new backend) leaves every bucket as it was. Rebuilding them on each
    reload would hand every caller a full bucket whenever anything is applied. So a bucket
    lives as long as its policy, its target and its `local` entries stay the same.
    """

    __slots__ = ("_buckets", "_clock")

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Hashable, LocalRateLimits] = {}

    def get(self, owner: Hashable, specs: Sequence[LocalRateLimitSpec]) -> LocalRateLimits:
        key = (owner, tuple(specs))
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = LocalRateLimits(bucket(spec, self._clock) for spec in specs)
        return found

    def keep_only(self, in_use: Iterable[LocalRateLimits]) -> None:
        """Forget the buckets of policies that are gone or changed."""
        alive = {id(limits) for limits in in_use}
        self._buckets = {k: v for k, v in self._buckets.items() if id(v) in alive}
