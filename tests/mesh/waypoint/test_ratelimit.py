"""agentgateway's local rate limit: `requests + burst` at once, then `requests` per whole `unit`."""

from __future__ import annotations

import pytest

from trustusbank.manifests.gateway.objects import LocalRateLimitSpec
from trustusbank.mesh.waypoint.ratelimit import LocalRateLimit, LocalRateLimits, bucket


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def outcomes(limit: LocalRateLimit | LocalRateLimits, n: int) -> tuple[int, int]:
    """(allowed, refused with 429) out of n requests at the same instant."""
    allowed = sum(limit.try_acquire() for _ in range(n))
    return allowed, n - allowed


def test_bucket_starts_full_with_requests_plus_burst() -> None:
    clock = FakeClock()
    limit = LocalRateLimit(10, "Seconds", burst=5, clock=clock)

    assert limit.capacity == 15
    assert outcomes(limit, 100) == (15, 85)


def test_without_burst_the_bucket_holds_one_unit_of_requests() -> None:
    limit = LocalRateLimit(3, "Minutes", clock=FakeClock())

    assert outcomes(limit, 5) == (3, 2)


def test_refill_is_discrete_requests_per_whole_unit() -> None:
    clock = FakeClock()
    limit = LocalRateLimit(600, "Minutes", burst=60, clock=clock)  # the deploy's gateway-wide limit
    assert outcomes(limit, 700) == (660, 40)

    clock.advance(59.9)  # no partial refill before the minute is up
    assert outcomes(limit, 1) == (0, 1)
    clock.advance(0.1)
    assert outcomes(limit, 700) == (600, 100)


def test_idle_time_refills_up_to_capacity_only() -> None:
    clock = FakeClock()
    limit = LocalRateLimit(2, "Seconds", burst=1, clock=clock)
    assert outcomes(limit, 3) == (3, 0)

    clock.advance(10)  # ten refills of 2, capped at 3
    assert limit.available == 3
    assert outcomes(limit, 10) == (3, 7)


def test_refill_schedule_stays_on_the_unit_grid() -> None:
    clock = FakeClock()
    limit = LocalRateLimit(1, "Seconds", clock=clock)
    assert outcomes(limit, 1) == (1, 0)

    clock.advance(2.5)  # refills were due at +1 and +2; the next is at +3
    assert outcomes(limit, 5) == (1, 4)
    assert limit.retry_after() == pytest.approx(0.5)


def test_retry_after_is_the_time_to_the_next_refill() -> None:
    clock = FakeClock()
    limit = LocalRateLimit(5, "Hours", clock=clock)
    assert limit.retry_after() == 0.0
    outcomes(limit, 5)

    clock.advance(600)
    assert limit.retry_after() == pytest.approx(3000.0)
    clock.advance(3000)
    assert limit.retry_after() == 0.0


def test_all_limits_of_a_policy_must_pass_and_tokens_are_not_returned() -> None:
    clock = FakeClock()
    per_second = LocalRateLimit(2, "Seconds", clock=clock)
    per_minute = LocalRateLimit(3, "Minutes", clock=clock)
    both = LocalRateLimits([per_second, per_minute])

    assert outcomes(both, 5) == (2, 3)
    clock.advance(1)
    assert outcomes(both, 5) == (1, 4)  # the minute bucket is now empty
    assert per_second.available == 0  # the refused requests still took its tokens, as agentgateway's do
    assert both.retry_after() == pytest.approx(59.0)


def test_spec_builds_a_fresh_bucket() -> None:
    spec = LocalRateLimitSpec.from_spec({"requests": 600, "unit": "Minutes", "burst": 60})

    assert spec == LocalRateLimitSpec(600, "Minutes", 60)
    assert bucket(spec, FakeClock()).capacity == 660


@pytest.mark.parametrize(
    ("requests", "unit", "burst"), [(0, "Seconds", None), (1, "Days", None), (1, "Seconds", -1)]
)
def test_invalid_parameters_are_refused(requests: int, unit: str, burst: int | None) -> None:
    with pytest.raises(ValueError, match="must"):
        LocalRateLimit(requests, unit, burst)
