"""The benchmarks' lift of deploy/'s account-route rate limit: one definition, in the bench harness."""

from trustusbank.scenario.bench.rate_limit import UNLIMITED, lift_rate_limit

__all__ = ["UNLIMITED", "lift_rate_limit"]
