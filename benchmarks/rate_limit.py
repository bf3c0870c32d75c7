"""The benchmarks' lift of deploy/'s rate limit: one definition, in the bench harness."""

from trustusbank.scenario.bench.rate_limit import lift_rate_limit, unlimited

__all__ = ["lift_rate_limit", "unlimited"]
