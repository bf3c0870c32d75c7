"""The follow-on demos by name, apart from the demos themselves: `demo --help` lists them
without importing the scenarios (and, through them, the HTTP client and the runtime)."""

from __future__ import annotations

# name -> module under trustusbank.scenario.followups (imported when run)
FOLLOW_UPS: dict[str, str] = {
    "trace": "trace",
    "live-policy": "live_policy",
    "l7-block": "l7_block",
    "egress-llm": "egress_llm",
    "a2a": "a2a",
    "rate-limit": "rate_limit",
}
