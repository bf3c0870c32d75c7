"""CEL decisions per second for the seed's account-mcp allowlist, as the waypoint makes them.

The policy comes from deploy/ through the waypoint's own routing table, so this measures the
code path a tool call takes. Three figures from one run:

- allowed: support-bot calls get_balance, again and again (a steady caller);
- denied: fraud-bot calls get_balance (both rules evaluated, neither matches);
- cold activation: the two calls alternate, so the activation is rebuilt on every decision.

Each call builds a fresh McpInfo, as the server does per request. Usage:
    .venv/bin/python benchmarks/cel_decisions.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from trustusbank.manifests.bundle import load_bundle
from trustusbank.mesh.authz.cel import Identity, McpAuthorization, McpInfo, RequestInfo
from trustusbank.mesh.waypoint.routes import WaypointConfig

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SUPPORT = Identity("cluster.local", "trustusbank-bank-agents", "support-bot")
FRAUD = Identity("cluster.local", "trustusbank-bank-agents", "fraud-bot")
REQUEST = RequestInfo("POST", "/mcp/account/", "trustusbank-agentgw.trustusbank-platform:8080", {})


def account_policy() -> McpAuthorization:
    config = WaypointConfig.from_manifests(
        load_bundle(DEPLOY).objects, "trustusbank-platform", "trustusbank-agentgw"
    )
    match = config.match("/mcp/account/")
    if match is None or match.mcp_authorization is None:
        raise SystemExit("deploy/ has no MCP authorization on /mcp/account/")
    return match.mcp_authorization


def rate(run: Callable[[int], None], n: int, rounds: int) -> float:
    """Best of `rounds` timed runs of `n` decisions, after a warm-up run."""
    run(max(n // 10, 100))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer decisions (well under 10 s)")
    args = parser.parse_args()
    n, rounds = (20_000, 3) if args.quick else (200_000, 5)
    policy = account_policy()

    def allowed(count: int) -> None:
        for _ in range(count):
            if not policy.decide(SUPPORT, REQUEST, McpInfo("tools/call", tool_name="get_balance")).allowed:
                raise AssertionError("support-bot should be allowed get_balance")

    def denied(count: int) -> None:
        for _ in range(count):
            if policy.decide(FRAUD, REQUEST, McpInfo("tools/call", tool_name="get_balance")).allowed:
                raise AssertionError("fraud-bot should be denied get_balance")

    def cold(count: int) -> None:
        for i in range(count):
            who = SUPPORT if i % 2 else FRAUD
            if policy.decide(who, REQUEST, McpInfo("tools/call", tool_name="get_balance")).allowed != (
                i % 2 == 1
            ):
                raise AssertionError("wrong decision")

    figures = {
        name: rate(run, n, rounds) for name, run in (("allowed", allowed), ("denied", denied), ("cold", cold))
    }
    print(f"$ {Path(sys.executable).name} benchmarks/cel_decisions.py{' --quick' if args.quick else ''}")
    print(
        f"cel decisions/s: {figures['allowed']:.0f} (allowed) {figures['denied']:.0f} (denied) "
        f"{figures['cold']:.0f} (cold activation)"
    )
    print(
        f"ratios: denied/allowed {figures['denied'] / figures['allowed']:.2f}, "
        f"cold/allowed {figures['cold'] / figures['allowed']:.2f}  (best of {rounds} x {n} decisions)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
