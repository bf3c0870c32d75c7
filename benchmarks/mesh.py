"""Mesh benchmark: a `tools/call` to account-mcp, direct vs through the mesh, side by side.

    python benchmarks/mesh.py [--quick] [--mode namespaces|cooperative|both] [--pool on|off|both]
                              [--baseline OLD/src]

Starts an embedded cluster per isolation mode (TRUSTUSBANK_ISOLATION), each in a temporary
state directory (calls are made from
support-bot's pod, so they carry an identity the allowlist admits), then measures, in
one run, on 127.0.0.1:
  direct     the client talks to the account-mcp pod's app address (no mesh)
  ztunnel    client → source ztunnel → HBONE → destination ztunnel → pod
  full-path  client → ztunnel → HBONE → waypoint (MCP policy) → HBONE → ztunnel → pod
Latency (median, p99) from sequential calls; calls/s at 1 and 16 concurrent
clients. Ratios are to direct. The last line is the full-path/direct
throughput ratio at 16 concurrent. Also CEL decisions/s for the seed allowlist.

The clusters run at once; every path in every cluster is measured in two halves, the
second in the reverse order of the first (direct, ztunnel, full-path per cluster, then
back), so machine noise falls on both sides of every ratio. In the namespaces mode the
host reaches a pod's capture (<pod-ip>:15001) and app address through the supervisor's routes into the pod's
namespace. Then the modes side by side; the verdict: isolation may not make the ratios to
direct (x median, x tput@16) worse by more than 10 %. A mode the machine cannot give
(`up` fails, or status reports the other mode) is said so and left out.

`--pool both` (the default) also runs each mode with HBONE pooling off
(TRUSTUSBANK_HBONE_POOL=0: a TLS connection per tunnel) beside pooling on (streams share
an HTTP/2 connection per peer pair, as ztunnel pools), measured in the same rounds, and
prints the two side by side; the other tables are the pooled cluster's.

`--baseline OLD/src` also runs each mode from another tree's src directory (an older
commit's export, with its deploy/ beside it), measured in the same interleaved rounds, and
prints this tree against it: a before/after from one sitting. Issue 15's mesh targets
(full path >= 0.6x direct at 16 concurrent, <= 1 ms added median per hop) are printed for
every cluster of this tree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trustusbank.cluster.layout import ClusterFiles  # noqa: E402
from trustusbank.cluster.ports import OUTBOUND_PORT  # noqa: E402
from trustusbank.cluster.topology import Topology  # noqa: E402

sys.path.insert(0, str(ROOT))
from benchmarks.isolation_modes import (  # noqa: E402
    Metric,
    add_mode_option,
    load,
    mode_env,
    table,
    unavailable,
    wanted,
)
from benchmarks.rate_limit import lift_rate_limit  # noqa: E402

ARGS = {"customer_id": "12345"}
POOL_OFF = " pool-off"  # the label suffix of a cluster running without HBONE pooling
BASELINE = " baseline"  # the label suffix of a cluster running another tree's code (--baseline)


def start_cluster(
    state: Path, mode: str, pool: bool = True, src: Path | None = None
) -> tuple[ClusterFiles, str | None]:
    """Bring a cluster up in `mode` (from `src`, another tree's src directory, if given); the files,
    and why the mode is unavailable (None: it is not)."""
    files = ClusterFiles(state)
    files.make()
    lift_rate_limit(files)
    env = {
        **os.environ,
        "TRUSTUSBANK_STATE_DIR": str(state),
        "TRUSTUSBANK_PORT_FORWARDS": "0",
        "TRUSTUSBANK_DEPLOY_DIR": str((src.parent if src else ROOT) / "deploy"),
        **mode_env(mode),
        "TRUSTUSBANK_HBONE_POOL": "1" if pool else "0",
    }
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])
    up = subprocess.run(
        [sys.executable, "-m", "trustusbank", "up", "--detach"], env=env, capture_output=True, text=True
    )
    if up.returncode != 0:
        return files, unavailable(mode, None, f"`up` failed:\n{up.stderr}")
    status = json.loads(files.status.read_text())
    return files, unavailable(mode, status.get("isolation"))


def stop_cluster(state: Path) -> None:
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(state)}
    subprocess.run([sys.executable, "-m", "trustusbank", "down"], env=env, capture_output=True)


def targets(files: ClusterFiles) -> dict[str, tuple[str, str | None]]:
    topo = Topology.load(files.topology)
    account = next(p for p in topo.pods if p.deployment == "account-mcp")
    bot = next(p for p in topo.pods if p.deployment == "support-bot")
    proxy = f"socks5h://{bot.ip}:{OUTBOUND_PORT}"
    return {
        "direct": (f"http://{account.app_ip}:8000/mcp", None),
        "ztunnel": ("http://account-mcp.trustusbank-bank-mcp.svc.cluster.local:8000/mcp", proxy),
        "full-path": (
            "http://trustusbank-agentgw.trustusbank-platform.svc.cluster.local:8080/mcp/account",
            proxy,
        ),
    }


async def worker(url: str, proxy: str | None, calls: int, latencies: list[float]) -> None:
    http = httpx2.AsyncClient(proxy=proxy, trust_env=False, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client:
        await client.call_tool("get_balance", ARGS)  # warm: connection and handshake
        for _ in range(calls):
            started = time.perf_counter()
            result = await client.call_tool("get_balance", ARGS)
            latencies.append(time.perf_counter() - started)
            if result.is_error:
                raise SystemExit(f"{url}: {result.content}")


async def measure(url: str, proxy: str | None, concurrency: int, calls: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(worker(url, proxy, calls, latencies) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return latencies, len(latencies) / elapsed


def cel_rate(seconds: float) -> float:
    from trustusbank.manifests.bundle import load_bundle
    from trustusbank.mesh.authz.cel import Identity, McpInfo, RequestInfo
    from trustusbank.mesh.waypoint.routes import WaypointConfig

    bundle = load_bundle(ROOT / "deploy", exclude=[ROOT / "deploy/08-defence"])
    config = WaypointConfig.from_manifests(bundle.objects, "trustusbank-platform", "trustusbank-agentgw")
    match = config.match("/mcp/account")
    if match is None or match.mcp_authorization is None:
        raise SystemExit("deploy/ has no MCP policy on /mcp/account")
    policy = match.mcp_authorization
    source = Identity("cluster.local", "trustusbank-bank-agents", "support-bot")
    request = RequestInfo("POST", "/mcp/account", "trustusbank-agentgw", {})
    calls = [
        McpInfo("tools/call", tool_name="get_balance"),
        McpInfo("tools/call", tool_name="flag_suspicious"),
    ]
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for mcp in calls:
            policy.decide(source, request, mcp)
        count += len(calls)
    return count / (time.perf_counter() - started)


Row = tuple[float, float, float, float]  # median ms, p99 ms, calls/s at 1, calls/s at 16


def measure_modes(clusters: dict[str, ClusterFiles], quick: bool) -> dict[str, dict[str, Row]]:
    """Each path in each mode, in two halves: the second runs paths and modes in reverse order.

    Direct and the mesh paths are measured minutes apart otherwise, and on a shared
    machine the load changes in between; this way each ratio's two sides share it.
    """
    sequential, per_worker = (30, 8) if quick else (200, 30)  # per half
    paths = {mode: targets(files) for mode, files in clusters.items()}
    names = list(next(iter(paths.values())))
    samples: dict[str, dict[str, tuple[list[float], list[float], list[float]]]] = {
        mode: {name: ([], [], []) for name in names} for mode in clusters
    }
    halves = [[(name, mode) for name in names for mode in clusters]]
    halves.append(list(reversed(halves[0])))
    for name, mode in (pair for half in halves for pair in half):
        print(f"measuring {name}, {mode}…", file=sys.stderr)
        url, proxy = paths[mode][name]
        latencies, rates1, rates16 = samples[mode][name]
        latencies += asyncio.run(measure(url, proxy, 1, sequential))[0]
        rates1.append(asyncio.run(measure(url, proxy, 1, sequential))[1])
        rates16.append(asyncio.run(measure(url, proxy, 16, per_worker))[1])
    rows: dict[str, dict[str, Row]] = {}
    for mode, per_path in samples.items():
        rows[mode] = {}
        for name, (latencies, rates1, rates16) in per_path.items():
            q = statistics.quantiles(latencies, n=100)
            rows[mode][name] = (
                statistics.median(latencies) * 1000,
                q[98] * 1000,
                statistics.fmean(rates1),
                statistics.fmean(rates16),
            )
    return rows


def report(rows: dict[str, Row]) -> None:
    """One mode's table, as this benchmark always printed it."""
    direct = rows["direct"]
    print(
        f"{'path':<10} {'median ms':>10} {'p99 ms':>8} {'calls/s@1':>10} {'calls/s@16':>11} "
        f"{'x median':>9} {'x tput@16':>10}"
    )
    for name, (median, p99, rate1, rate16) in rows.items():
        print(
            f"{name:<10} {median:>10.2f} {p99:>8.2f} {rate1:>10.0f} {rate16:>11.0f} "
            f"{median / direct[0]:>9.2f} {rate16 / direct[3]:>10.2f}"
        )
    hops = {"ztunnel": 2, "full-path": 4}
    for name, count in hops.items():
        added = (rows[name][0] - direct[0]) / count
        print(f"added median per proxy hop ({name}, {count} hops): {added:.2f} ms")
    print(f"full-path/direct throughput ratio at 16 concurrent: {rows['full-path'][3] / direct[3]:.2f}")


def side_by_side(rows: dict[str, dict[str, Row]]) -> list[Metric]:
    modes = list(rows)
    metrics = []
    for name in ("direct", "ztunnel", "full-path"):
        metrics += [
            Metric(f"{name} median ms", {m: rows[m][name][0] for m in modes}),
            Metric(f"{name} calls/s@16", {m: rows[m][name][3] for m in modes}, True, fmt=".0f"),
        ]
    for name in ("ztunnel", "full-path"):
        metrics += [
            Metric(
                f"{name}/direct x median",
                {m: rows[m][name][0] / rows[m]["direct"][0] for m in modes},
                judged=True,
            ),
            Metric(
                f"{name}/direct x tput@16",
                {m: rows[m][name][3] / rows[m]["direct"][3] for m in modes},
                True,
                judged=True,
            ),
        ]
    return metrics


def per_hop(rows: dict[str, Row], name: str, hops: int) -> float:
    return (rows[name][0] - rows["direct"][0]) / hops


def compare_table(rows: dict[str, dict[str, Row]], suffix: str, title: str, left: str, right: str) -> None:
    """Each mode measured both ways (`mode` and `mode + suffix`): the values and their ratio."""
    for mode in [label for label in rows if label + suffix in rows]:
        a, b = rows[mode], rows[mode + suffix]
        print(f"== {title}, {mode} ==")
        print(f"{'metric':<34} {left:>9} {right:>9} {'ratio':>7}")
        lines = []
        for name in ("ztunnel", "full-path"):
            lines += [
                (f"{name} median ms", a[name][0], b[name][0]),
                (f"{name} calls/s@16", a[name][3], b[name][3]),
                (f"{name}/direct x tput@16", a[name][3] / a["direct"][3], b[name][3] / b["direct"][3]),
            ]
        for name, hops in (("ztunnel", 2), ("full-path", 4)):
            lines.append((f"{name} added median ms per hop", per_hop(a, name, hops), per_hop(b, name, hops)))
        for metric, value_a, value_b in lines:
            ratio = value_a / value_b if value_b else float("nan")
            print(f"{metric:<34} {value_a:>9.2f} {value_b:>9.2f} {ratio:>7.2f}")


def issue_targets(rows: dict[str, dict[str, Row]]) -> None:
    """Issue 15's mesh targets, for each cluster running this tree with pooling on."""
    for mode in [label for label in rows if not label.endswith((POOL_OFF, BASELINE))]:
        tput = rows[mode]["full-path"][3] / rows[mode]["direct"][3]
        hops = {name: per_hop(rows[mode], name, n) for name, n in (("ztunnel", 2), ("full-path", 4))}
        verdict = {True: "met", False: "not met"}
        print(
            f"issue 15 targets, {mode}: full-path/direct tput@16 {tput:.2f} (target >= 0.6: "
            f"{verdict[tput >= 0.6]}); added median per hop {hops['ztunnel']:.2f} ms on the ztunnel path, "
            f"{hops['full-path']:.2f} ms on the full path (target <= 1 ms on every hop: "
            f"{verdict[max(hops.values()) <= 1]})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls: a run of a minute or two")
    add_mode_option(parser)
    parser.add_argument(
        "--pool",
        choices=["on", "off", "both"],
        default="both",
        help="HBONE pooling on, off, or both side by side (default both)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="OLD/src",
        help="also run a cluster from another tree's src directory (an older commit's), interleaved",
    )
    opts = parser.parse_args()
    modes = wanted(opts.mode)
    pools = {"on": [True], "off": [False], "both": [True, False]}[opts.pool]
    before = load()
    missing: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        clusters: dict[str, ClusterFiles] = {}
        for mode in modes:
            for pool in pools:
                label = mode if pool else mode + POOL_OFF
                state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trustusbank-bench-")))
                print(f"starting the embedded cluster, {label}…", file=sys.stderr)
                stack.callback(stop_cluster, state)
                files, why = start_cluster(state, mode, pool)
                if why:
                    missing[label] = why
                else:
                    clusters[label] = files
            if opts.baseline is not None:
                state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trustusbank-bench-")))
                print(f"starting the embedded cluster, {mode}{BASELINE} ({opts.baseline})…", file=sys.stderr)
                stack.callback(stop_cluster, state)
                files, why = start_cluster(state, mode, src=opts.baseline.resolve())
                if why:
                    missing[mode + BASELINE] = why
                else:
                    clusters[mode + BASELINE] = files
        if not clusters:
            raise SystemExit("\n".join(missing.values()) or "no mode could be measured")
        rows = measure_modes(clusters, opts.quick)
    for why in missing.values():
        print(why)
    for label, per_path in rows.items():
        print(f"== isolation: {label} ==")
        report(per_path)
    print(f"cel decisions/s (seed allowlist): {cel_rate(1.0 if opts.quick else 3.0):,.0f}")
    compare_table(rows, POOL_OFF, "HBONE pooling on (one connection per peer pair) vs off", "on", "off")
    compare_table(rows, BASELINE, f"this tree vs {opts.baseline}", "this", "baseline")
    issue_targets(rows)
    print(f"== side by side ({before} at start, {load()} at end) ==")
    ours = {label: per_path for label, per_path in rows.items() if not label.endswith((POOL_OFF, BASELINE))}
    by_mode = ours
    by_mode = by_mode or {label.removesuffix(POOL_OFF): per_path for label, per_path in rows.items()}
    table(side_by_side(by_mode), ["judged: each path's ratios to direct, namespaces against cooperative"])


if __name__ == "__main__":
    main()
