"""Demo benchmark: `trustusbank demo` end to end (cold start to verdict) and warm, as whole processes.

    python benchmarks/demo.py [--quick]

Measured in one run, in a temporary state directory, with the seed's local ports off:
  cold demo   `trustusbank demo --json` with no cluster running: starts one, three acts, stops it
  warm demo   `trustusbank demo --json` against a running cluster (`up --detach` first): the acts only
  warm ask    `trustusbank ask "<seed prompt>"` against that cluster (median)
Printed beside the write-up's path (kind + Anthropic: minutes to deploy, about 5 s a
prompt; quoted, not measured). Goals: the whole demo under 15 s, a warm prompt under 0.5 s.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trustusbank.cluster.topology import Topology  # noqa: E402
from trustusbank.scenario.cluster import SEED_PROMPT  # noqa: E402

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
        raise SystemExit(f"demo failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one warm demo and three asks")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trustusbank-bench-") as tmp:
        env = {
            **os.environ,
            "TRUSTUSBANK_STATE_DIR": tmp,
            "TRUSTUSBANK_PORT_FORWARDS": "0",
            "TRUSTUSBANK_DEPLOY_DIR": str(ROOT / "deploy"),
        }
        print("cold demo (starts and stops its own cluster)…", file=sys.stderr)
        cold, record = demo(env)
        acts_cold = float(record["seconds"])  # type: ignore[arg-type]
        print("starting a cluster for the warm runs…", file=sys.stderr)
        up, done = cli(env, "up", "--detach")
        if done.returncode != 0:
            raise SystemExit(f"up failed:\n{done.stderr[-2000:]}")
        try:
            warm = [demo(env)[0] for _ in range(1 if opts.quick else 3)]
            chatbot = next(
                p
                for p in Topology.load(Path(tmp) / "cluster" / "topology.json").pods
                if p.deployment == "chatbot"
            )
            base = f"http://{chatbot.app_ip}:8080"
            asks = [
                cli(env, "ask", SEED_PROMPT, "--chatbot", base)[0] for _ in range(3 if opts.quick else 10)
            ]
        finally:
            cli(env, "down")
    print(f"{'run':<28} {'seconds':>8}")
    print(f"{'cold demo (whole process)':<28} {cold:>8.1f}")
    print(f"{'  of which the three acts':<28} {acts_cold:>8.1f}")
    print(f"{'up --detach':<28} {up:>8.1f}")
    print(f"{'warm demo (median)':<28} {statistics.median(warm):>8.1f}")
    print(f"{'warm ask process (median)':<28} {statistics.median(asks):>8.2f}")
    print(
        f"write-up's path (quoted): minutes to deploy, ~{SEED_PROMPT_SECONDS:.0f} s a prompt; "
        f"ours: cold demo {cold:.0f} s, a prompt {statistics.median(asks):.1f} s as a process "
        "(see benchmarks/agent_prompt.py for the prompt without process start-up)"
    )


if __name__ == "__main__":
    main()
