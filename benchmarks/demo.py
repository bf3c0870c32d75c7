"""Demo benchmark: `trustusbank demo` end to end (cold start to verdict) and warm, as whole processes.

    python benchmarks/demo.py [--quick] [--mode namespaces|cooperative|both]

Measured in one run, in temporary state directories, with the seed's local ports off, in
each isolation mode (TRUSTUSBANK_ISOLATION), the modes interleaved (AB BA …):
  cold demo   `trustusbank demo --json` with no cluster running: starts one, three acts, stops it
  warm demo   `trustusbank demo --json` against a running cluster (`up --detach` first): the acts only
  warm ask    `trustusbank ask "<seed prompt>"` against that cluster (median)
Printed beside the write-up's path (kind + Anthropic: minutes to deploy, about 5 s a
prompt; quoted, not measured). Goals: the whole demo under 15 s, a warm prompt under 0.5 s.
Then the modes side by side; the verdict: isolation may not make the cold demo more than
10 % slower. A mode the machine cannot give (`up`/the demo fails, or status reports the
other mode) is said so and left out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trustusbank.cluster.topology import Topology  # noqa: E402
from trustusbank.scenario.cluster import SEED_PROMPT  # noqa: E402

sys.path.insert(0, str(ROOT))
from benchmarks.isolation_modes import (  # noqa: E402
    Metric,
    add_mode_option,
    load,
    mode_env,
    rounds,
    say,
    table,
    unavailable,
    wanted,
)

SEED_PROMPT_SECONDS = 5.0


def cli(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "trustusbank", *args], env=env, capture_output=True, text=True, timeout=900
    )
    return time.perf_counter() - started, done


def demo(env: dict[str, str]) -> tuple[float, dict[str, object]]:
    seconds, done = cli(env, "demo", "--json")
    if done.returncode != 0:
        raise DemoFailed(f"demo failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


class DemoFailed(RuntimeError):
    pass


@dataclass
class Runs:
    """One mode's figures."""

    cold: list[float] = field(default_factory=list)
    acts_cold: list[float] = field(default_factory=list)
    up: float = 0.0
    warm: list[float] = field(default_factory=list)
    asks: list[float] = field(default_factory=list)


def environment(state: str, mode: str) -> dict[str, str]:
    return {
        **os.environ,
        "TRUSTUSBANK_STATE_DIR": state,
        "TRUSTUSBANK_PORT_FORWARDS": "0",
        "TRUSTUSBANK_DEPLOY_DIR": str(ROOT / "deploy"),
        **mode_env(mode),
    }


def cold_runs(modes: list[str], count: int, runs: dict[str, Runs], missing: dict[str, str]) -> None:
    """Cold demos, each in a fresh state directory, the modes interleaved."""
    for mode in rounds(modes, count):
        if mode in missing:
            continue
        say(f"cold demo, {mode} (starts and stops its own cluster)…")
        with tempfile.TemporaryDirectory(prefix="trustusbank-bench-") as tmp:
            try:
                cold, record = demo(environment(tmp, mode))
            except DemoFailed as exc:
                missing[mode] = unavailable(mode, None, str(exc)) or ""
                continue
        why = unavailable(mode, record.get("isolation"))  # type: ignore[arg-type]
        if why:
            missing[mode] = why
            continue
        runs[mode].cold.append(cold)
        runs[mode].acts_cold.append(float(record["seconds"]))  # type: ignore[arg-type]


def warm_runs(
    modes: list[str], states: dict[str, str], quick: bool, runs: dict[str, Runs], missing: dict[str, str]
) -> None:
    """A detached cluster per mode, then warm demos and asks against each, interleaved."""
    bases: dict[str, str] = {}
    for mode in modes:
        say(f"starting a {mode} cluster for the warm runs…")
        env = environment(states[mode], mode)
        runs[mode].up, done = cli(env, "up", "--detach")
        if done.returncode != 0:
            missing[mode] = unavailable(mode, None, f"`up` failed:\n{done.stderr[-2000:]}") or ""
            continue
        status = json.loads((Path(states[mode]) / "cluster" / "status.json").read_text())
        why = unavailable(mode, status.get("isolation"))
        if why:
            missing[mode] = why
            continue
        chatbot = next(
            p
            for p in Topology.load(Path(states[mode]) / "cluster" / "topology.json").pods
            if p.deployment == "chatbot"
        )
        bases[mode] = f"http://{chatbot.app_ip}:8080"
    live = [m for m in modes if m in bases]
    for mode in rounds(live, 1 if quick else 3):
        runs[mode].warm.append(demo(environment(states[mode], mode))[0])
    for mode in rounds(live, 3 if quick else 10):
        env = environment(states[mode], mode)
        runs[mode].asks.append(cli(env, "ask", SEED_PROMPT, "--chatbot", bases[mode])[0])


def report(runs: Runs) -> None:
    """The single-mode table, as this benchmark always printed it (cold: the median of the runs)."""
    cold, asks = statistics.median(runs.cold), statistics.median(runs.asks)
    print(f"{'run':<28} {'seconds':>8}")
    print(f"{'cold demo (whole process)':<28} {cold:>8.1f}")
    print(f"{'  of which the three acts':<28} {statistics.median(runs.acts_cold):>8.1f}")
    print(f"{'up --detach':<28} {runs.up:>8.1f}")
    print(f"{'warm demo (median)':<28} {statistics.median(runs.warm):>8.1f}")
    print(f"{'warm ask process (median)':<28} {asks:>8.2f}")
    print(
        f"write-up's path (quoted): minutes to deploy, ~{SEED_PROMPT_SECONDS:.0f} s a prompt; "
        f"ours: cold demo {cold:.0f} s, a prompt {asks:.1f} s as a process "
        "(see benchmarks/agent_prompt.py for the prompt without process start-up)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="two cold demos, one warm demo and three asks a mode"
    )
    add_mode_option(parser)
    opts = parser.parse_args()
    modes = wanted(opts.mode)
    runs = {mode: Runs() for mode in modes}
    missing: dict[str, str] = {}
    before = load()
    cold_runs(modes, 2 if opts.quick else 3, runs, missing)
    with contextlib.ExitStack() as stack:
        states = {
            m: stack.enter_context(tempfile.TemporaryDirectory(prefix="trustusbank-bench-")) for m in modes
        }
        try:
            warm_runs([m for m in modes if m not in missing], states, opts.quick, runs, missing)
        finally:
            for mode in modes:
                cli(environment(states[mode], mode), "down")
    for why in missing.values():
        print(why)
    measured = [m for m in modes if m not in missing]
    if not measured:
        raise SystemExit("no mode could be measured")
    for mode in measured:
        print(f"== isolation: {mode} ==")
        report(runs[mode])
    print(f"== side by side ({before} at start, {load()} at end) ==")
    table(
        [
            Metric(
                "cold demo s (median)", {m: statistics.median(runs[m].cold) for m in measured}, judged=True
            ),
            Metric("  of which the acts s", {m: statistics.median(runs[m].acts_cold) for m in measured}),
            Metric("up --detach s", {m: runs[m].up for m in measured}),
            Metric("warm demo s (median)", {m: statistics.median(runs[m].warm) for m in measured}),
            Metric("warm ask s (median)", {m: statistics.median(runs[m].asks) for m in measured}),
        ],
        [f"cold demo runs, interleaved: {m} " + " ".join(f"{t:.1f}" for t in runs[m].cold) for m in measured]
        + ["judged: the cold demo wall time"],
    )


if __name__ == "__main__":
    main()
