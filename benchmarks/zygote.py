"""Pod zygote benchmark: cold `up --detach` and the cluster's memory, pods forked or fresh.

    python benchmarks/zygote.py [--quick] [--zygote on|off|both] [--isolation auto|namespaces|cooperative]

Measured in one run, each `up` in a fresh temporary state directory, with the seed's
local ports off, the zygote on and off (TRUSTUSBANK_POD_ZYGOTE) interleaved (AB BA …):
  up --detach   wall seconds of `trustusbank up --detach` (a cold start: a new state directory)
  cluster PSS   the sum of Pss in /proc/<pid>/smaps_rollup over the supervisor and every
                process under it (zygote, node proxies, waypoints, pods and their podinit, console),
                read once the cluster is Running; PSS splits each shared page among its sharers,
                so the sum is the memory the cluster really holds
  processes     how many processes that is
  forked        how many pods and node proxies the zygote forked (runtime log `started` events)
Then the two side by side with on/off ratios, and the issue's targets (up ≤ 5 s, PSS ≤ 400 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.isolation_modes import load, say  # noqa: E402

SETTINGS = ("on", "off")
UP_TARGET_S = 5.0
PSS_TARGET_MB = 400.0


@dataclass
class Runs:
    up: list[float] = field(default_factory=list)
    pss_mb: list[float] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    forked: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    isolation: str = ""


def environment(state: str, zygote: str, isolation: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TRUSTUSBANK_STATE_DIR": state,
        "TRUSTUSBANK_PORT_FORWARDS": "0",
        "TRUSTUSBANK_DEPLOY_DIR": str(ROOT / "deploy"),
        "TRUSTUSBANK_POD_ZYGOTE": "1" if zygote == "on" else "0",
    }
    if isolation != "auto":
        env["TRUSTUSBANK_ISOLATION"] = isolation
    return env


def cli(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "trustusbank", *args], env=env, capture_output=True, text=True, timeout=900
    )
    return time.perf_counter() - started, done


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(name))
    return tree


def descendants(root: int) -> Iterator[int]:
    tree, todo = children(), [root]
    while todo:
        pid = todo.pop()
        yield pid
        todo.extend(tree.get(pid, []))


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_up(setting: str, isolation: str, runs: Runs) -> None:
    with tempfile.TemporaryDirectory(prefix="trustusbank-bench-") as state:
        env = environment(state, setting, isolation)
        say(f"cold up --detach, zygote {setting}…")
        seconds, done = cli(env, "up", "--detach")
        try:
            if done.returncode != 0:
                raise SystemExit(f"`up --detach` failed with the zygote {setting}:\n{done.stderr[-2000:]}")
            status = json.loads((Path(state) / "cluster" / "status.json").read_text())
            pids = list(descendants(int(status["pid"])))
            runs.up.append(seconds)
            runs.pss_mb.append(sum(pss_kb(pid) for pid in pids) / 1024)
            runs.processes.append(len(pids))
            runs.isolation = str(status["isolation"]["mode"])
            events = Path(state) / "cluster" / "logs" / "runtime.jsonl"
            started = [e for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "started"]
            runs.started.append(len(started))
            runs.forked.append(sum(1 for e in started if e.get("forked")))
        finally:
            cli(env, "down")


def rounds(settings: list[str], count: int) -> Iterator[str]:
    for n in range(count):
        yield from (settings if n % 2 == 0 else list(reversed(settings)))


def row(name: str, values: dict[str, float], fmt: str, settings: list[str]) -> str:
    cells = [f"{values[s]:>12{fmt}}" for s in settings]
    ratio = ""
    if len(settings) == 2 and values[settings[1]]:
        ratio = f"{values[settings[0]] / values[settings[1]]:>10.2f}"
    return f"{name:<26}" + "".join(cells) + ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round (default three)")
    parser.add_argument("--zygote", choices=[*SETTINGS, "both"], default="both")
    parser.add_argument("--isolation", choices=["auto", "namespaces", "cooperative"], default="auto")
    args = parser.parse_args()
    settings = list(SETTINGS) if args.zygote == "both" else [args.zygote]
    runs = {s: Runs() for s in settings}
    say(load())
    for setting in rounds(settings, 1 if args.quick else 3):
        one_up(setting, args.isolation, runs[setting])
    print(
        f"pod zygote: cold `up --detach` and cluster memory ({load()}; median of {len(runs[settings[0]].up)})"
    )
    print(f"isolation: {', '.join(f'zygote {s}: {runs[s].isolation}' for s in settings)}")
    header = f"{'metric':<26}" + "".join(f"{'zygote ' + s:>12}" for s in settings)
    print(header + (f"{'on/off':>10}" if len(settings) == 2 else ""))
    med = {s: runs[s] for s in settings}
    print(row("up --detach (s)", {s: statistics.median(med[s].up) for s in settings}, ".2f", settings))
    print(row("cluster PSS (MB)", {s: statistics.median(med[s].pss_mb) for s in settings}, ".0f", settings))
    print(row("processes", {s: statistics.median(med[s].processes) for s in settings}, ".0f", settings))
    print(
        row("forked / started", {s: statistics.median(med[s].forked) for s in settings}, ".0f", settings),
        end="",
    )
    print("  of " + ", ".join(f"{statistics.median(med[s].started):.0f}" for s in settings))
    for s in settings:
        up, pss = statistics.median(med[s].up), statistics.median(med[s].pss_mb)
        print(
            f"targets, zygote {s}: up --detach {up:.2f} s vs ≤ {UP_TARGET_S:.0f} s: "
            f"{'met' if up <= UP_TARGET_S else 'NOT met'}; "
            f"cluster PSS {pss:.0f} MB vs ≤ {PSS_TARGET_MB:.0f} MB: "
            f"{'met' if pss <= PSS_TARGET_MB else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
