"""`demo rate-limit`: 5 requests a minute with a burst of 5 on one tool route, and 30 quick calls.

agentgateway's local rate limit is a token bucket per policy attachment
(`mesh/waypoint/ratelimit.py` follows its controller and data plane): it holds
`requests + burst` tokens, starts full, and gains `requests` tokens after each
whole `unit`. So 5/minute with burst 5 admits 10 calls at once and refuses the
next 20 of a quick burst of 30 with 429: the seed's 10 × 200 and 20 × 429.

A route-level `rateLimit` does not stack on the Gateway-wide one in deploy/
(600/minute): agentgateway merges traffic policies field by field, the more
specific attachment winning (Gateway < Listener < Route < Route rule), so this
route gets the route's bucket only and every other route keeps the Gateway's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.markup import escape

from trustusbank.cluster.watch import load_in_force
from trustusbank.mesh.waypoint.ratelimit import UNIT_SECONDS, LocalRateLimits
from trustusbank.mesh.waypoint.routes import WaypointConfig
from trustusbank.runtime import control
from trustusbank.scenario.cluster import Cluster, Progress
from trustusbank.scenario.followups import FollowUp
from trustusbank.scenario.followups.policies import (
    AGENTS,
    GATEWAY,
    PLATFORM,
    applied_policy,
    route_rate_limit,
    to_yaml,
)
from trustusbank.scenario.followups.policies.probes import (
    PodMcp,
    json_lines_since,
    route_url,
    size,
    wait_for_waypoint,
    waypoint_log_offset,
    waypoint_request_log,
)

POLICY = "demo-rate-limit-account"
ROUTE = "account-mcp-route"
ROUTE_PATH = "/mcp/account"
OTHER_PATH = "/mcp/transaction"
REQUESTS, UNIT, BURST = 5, "Minutes", 5
CALLS = 30
TOOL, ARGUMENTS = "get_balance", {"customer_id": "12345"}
SUPPORT_BOT_ID = f"spiffe://cluster.local/ns/{AGENTS}/sa/support-bot"


def expected_admitted(calls: int, requests: int, burst: int) -> int:
    """Calls a full bucket admits when all of them arrive within one unit: `requests + burst`."""
    return min(calls, requests + burst)


def _describe(limits: LocalRateLimits | None) -> str:
    if limits is None:
        return "no rate limit"
    return "; ".join(
        f"{b.requests}/{b.unit.removesuffix('s').lower()} + burst {b.burst or 0} (bucket of {b.capacity})"
        for b in limits.limits
    )


def effective_limits(cluster: Cluster) -> dict[str, str]:
    """What the waypoint's own configuration code makes of the policies in force, per route."""
    bundle = load_in_force(control.deploy_of(cluster.files), cluster.files)
    config = WaypointConfig.from_manifests(bundle.objects, PLATFORM, GATEWAY)
    found = {}
    for path in (ROUTE_PATH, OTHER_PATH):
        match = config.match(path, "POST")
        found[path] = _describe(match.rate_limit if match else None)
    return found


async def _log_counts(log: Path, offset: int, calls: int) -> Counter[int]:
    """HTTP statuses of this demo's calls as the waypoint recorded them (lines may trail the answers)."""
    counts: Counter[int] = Counter()
    for _ in range(40):
        records = [
            r
            for r in json_lines_since(log, offset)
            if r.get("route") == f"{PLATFORM}/{ROUTE}" and r.get("src.identity") == SUPPORT_BOT_ID
        ]
        counts = Counter(int(r.get("http.status") or 0) for r in records)
        if sum(counts.values()) >= calls:
            break
        await asyncio.sleep(0.05)
    return counts


async def run(cluster: Cluster, progress: Progress) -> FollowUp:
    document = route_rate_limit(POLICY, ROUTE, REQUESTS, UNIT, BURST)
    result = FollowUp("rate-limit", ok=False, summary="")
    lines, problems = result.lines, result.problems
    capacity = REQUESTS + BURST
    admitted = expected_admitted(CALLS, REQUESTS, BURST)
    lines += [
        f"[bold]policy[/] (applied as {POLICY}.yaml, like `trustusbank apply -f`):",
        *(f"  {escape(line)}" for line in to_yaml(document).splitlines()),
        f"agentgateway's bucket: requests + burst = {REQUESTS} + {BURST} = {capacity} tokens, full at start, "
        f"+{REQUESTS} after each whole minute; {CALLS} quick calls → expect {admitted} × 200, "
        f"{CALLS - admitted} × 429",
    ]
    log = waypoint_request_log(cluster)
    counts: Counter[int] = Counter()
    recorded: Counter[int] = Counter()
    elapsed = 0.0
    limits: dict[str, str] = {}
    try:
        since = waypoint_log_offset(cluster)
        async with applied_policy(cluster, document, progress):
            loaded = await wait_for_waypoint(cluster, POLICY, present=True, since=since)
            lines.append(f"the waypoint loaded it {loaded:.2f}s after the apply, without a restart")
            limits = effective_limits(cluster)
            lines += [f"effective limit on {path}: {text}" for path, text in limits.items()]
            log_offset = size(log)
            progress(f"{CALLS} MCP tools/call {TOOL} as support-bot")
            answers = []
            async with PodMcp(cluster, AGENTS, "support-bot") as mcp:
                started = time.monotonic()
                for _ in range(CALLS):
                    answers.append(await mcp.call(route_url("account"), TOOL, ARGUMENTS))
                elapsed = time.monotonic() - started
            counts = Counter(a.status for a in answers)
            recorded = await _log_counts(log, log_offset, CALLS)
            bad = [a.describe() for a in answers if a.status == 200 and not a.ok]
            problems += [f"a 200 without the tool's result: {bad[0]}"] if bad else []
            since = waypoint_log_offset(cluster)
        await wait_for_waypoint(cluster, POLICY, present=False, since=since)
    except Exception as exc:  # the demo reports what broke; the policy is gone either way
        problems.append(f"{type(exc).__name__}: {exc}")
    seconds = UNIT_SECONDS[UNIT]
    lines += [
        f"[bold]{CALLS} calls in {elapsed:.2f}s:[/] {counts.get(200, 0)} × 200, {counts.get(429, 0)} × 429"
        + "".join(f", {n} × {code}" for code, n in sorted(counts.items()) if code not in (200, 429)),
        f"recorded by the waypoint ({log}): {recorded.get(200, 0)} × 200, {recorded.get(429, 0)} × 429",
        f"{POLICY} removed; {ROUTE_PATH} is back under the Gateway-wide limit",
    ]
    if elapsed >= seconds:
        problems.append(
            f"the calls took {elapsed:.0f}s, more than one {UNIT[:-1].lower()}: tokens were refilled"
        )
    want = {200: admitted, 429: CALLS - admitted}
    if not problems and dict(counts) != want:
        problems.append(f"expected {admitted} × 200 and {CALLS - admitted} × 429, got {dict(counts)}")
    if not problems and dict(recorded) != dict(counts):
        problems.append(f"the waypoint's log records {dict(recorded)}, the caller saw {dict(counts)}")
    result.ok = not problems
    result.summary = (
        f"{counts.get(200, 0)} × 200 and {counts.get(429, 0)} × 429 for {CALLS} quick calls under "
        f"{REQUESTS}/minute + burst {BURST}"
        + ("" if result.ok else " (not what agentgateway's token bucket gives)")
    )
    data: dict[str, Any] = {
        "policy": document,
        "route": f"{PLATFORM}/{ROUTE}",
        "caller": SUPPORT_BOT_ID,
        "calls": CALLS,
        "seconds": round(elapsed, 3),
        "status_counts": {str(k): v for k, v in sorted(counts.items())},
        "recorded_counts": {str(k): v for k, v in sorted(recorded.items())},
        "expected": {"200": admitted, "429": CALLS - admitted},
        "bucket": {"requests": REQUESTS, "unit": UNIT, "burst": BURST, "capacity": capacity},
        "effective_limits": limits,
        "waypoint_log": str(log),
    }
    result.data = data
    return result
