"""CEL decisions per second for the seed's account-mcp allowlist, as the waypoint makes them.

The policy comes from deploy/ through the waypoint's own routing table, so this measures the
code path a tool call takes. Four cases, each with the decision cache on and off (the switch is
`McpAuthorization.with_cache`), measured in interleaved rounds so both modes see the same load:

- allowed: support-bot calls get_balance, again and again (a steady caller);
- denied: fraud-bot calls get_balance (both rules evaluated, neither matches);
- caller alternates: the two calls alternate (each caller keeps its activation; before, the
  activation was rebuilt on every decision);
- tool changes: support-bot calls a different tool every call (four tools, two allowed), so the
  `mcp` variable changes every decision;
- every call new: support-bot calls a tool never seen before (more names than the cache holds,
  so every decision is a miss and an eviction): the cache's worst case, printed beside the
  target but not one of the cases the target is about.

Each call builds a fresh McpInfo, as the server does per request, and every decision is
checked against the allowlist as deploy/ writes it. Target (issue 15): >= 200k decisions/s in
every case. Usage:
    .venv/bin/python benchmarks/cel_decisions.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from trustusbank.manifests.bundle import load_bundle
from trustusbank.mesh.authz.cel import DECISION_CACHE_SIZE, Identity, McpAuthorization, McpInfo, RequestInfo
from trustusbank.mesh.waypoint.routes import WaypointConfig

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SUPPORT = Identity("cluster.local", "trustusbank-bank-agents", "support-bot")
FRAUD = Identity("cluster.local", "trustusbank-bank-agents", "fraud-bot")
REQUEST = RequestInfo("POST", "/mcp/account/", "trustusbank-agentgw.trustusbank-platform:8080", {})
TARGET = 200_000
ALLOWED = {SUPPORT: {"get_balance", "get_profile"}, FRAUD: {"get_profile"}}
"""deploy/06-agentgateway/mcp-allowlists.yaml's account-mcp allowlist, written out independently."""

Case = list[tuple[Identity, str]]
CASES: dict[str, Case] = {
    "allowed": [(SUPPORT, "get_balance")],
    "denied": [(FRAUD, "get_balance")],
    "caller alternates": [(SUPPORT, "get_balance"), (FRAUD, "get_balance")],
    "tool changes": [(SUPPORT, t) for t in ("get_balance", "transfer_funds", "get_profile", "close_account")],
}
WORST = "every call new"


def account_policy() -> McpAuthorization:
    config = WaypointConfig.from_manifests(
        load_bundle(DEPLOY).objects, "trustusbank-platform", "trustusbank-agentgw"
    )
    match = config.match("/mcp/account/")
    if match is None or match.mcp_authorization is None:
        raise SystemExit("deploy/ has no MCP authorization on /mcp/account/")
    return match.mcp_authorization


def runner(policy: McpAuthorization, case: Case) -> Callable[[int], None]:
    """`count` decisions cycling through `case`, each checked against the allowlist."""
    calls = [(who, tool, tool in ALLOWED[who]) for who, tool in case]
    period = len(calls)

    def run(count: int) -> None:
        for i in range(count):
            who, tool, expected = calls[i % period]
            if policy.decide(who, REQUEST, McpInfo("tools/call", tool_name=tool)).allowed is not expected:
                raise AssertionError(f"wrong decision for {who.service_account} calling {tool}")

    return run


def timed(run: Callable[[int], None], n: int) -> float:
    start = time.perf_counter()
    run(n)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer decisions (well under 10 s)")
    args = parser.parse_args()
    n, rounds = (20_000, 3) if args.quick else (200_000, 5)
    policy = account_policy()
    modes = {"on": policy.with_cache(DECISION_CACHE_SIZE), "off": policy.with_cache(0)}
    cases = {**CASES, WORST: [(SUPPORT, f"tool-{i}") for i in range(max(n, 2 * DECISION_CACHE_SIZE))]}
    runs = {(case, mode): runner(modes[mode], calls) for case, calls in cases.items() for mode in modes}
    for run in runs.values():
        run(max(n // 10, 100))  # warm-up: activations built, decisions remembered
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):  # interleaved, so that both modes share the machine's moods
        for key, run in runs.items():
            best[key] = min(best[key], timed(run, n))
    rate = {key: n / seconds for key, seconds in best.items()}

    print(f"$ {Path(sys.executable).name} benchmarks/cel_decisions.py{' --quick' if args.quick else ''}")
    print(f"cel decisions/s, best of {rounds} interleaved rounds x {n} decisions; target {TARGET:,}/s")
    print(
        f"{'case':<18} {'cache on':>10} {'cache off':>10} {'on/off':>7} {'on/target':>10} {'off/target':>11}"
    )
    for case in cases:
        on, off = rate[(case, "on")], rate[(case, "off")]
        ratios = f"{on / off:>7.2f} {on / TARGET:>10.2f} {off / TARGET:>11.2f}"
        print(f"{case:<18} {on:>10,.0f} {off:>10,.0f} {ratios}")
    stats = modes["on"].cache_stats()
    if stats is not None:
        print(
            f"cache (all cases, cache on): {stats.size} of {stats.capacity} entries, {stats.hits:,} hits, "
            f"{stats.misses:,} misses, {stats.evictions:,} evictions"
        )
    met = all(rate[(case, "on")] >= TARGET for case in CASES)
    print(
        f"target >= {TARGET:,}/s with the cache on, steady or changing caller or tool "
        f"({', '.join(CASES)}): {'met' if met else 'NOT met'}; {WORST}: {rate[(WORST, 'on')]:,.0f}/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
