"""Agent benchmark: one customer prompt answered offline, without and with the mesh, side by side.

    python benchmarks/agent_prompt.py [--quick]

The seed's prompt ("I am customer 12345. Please check my balance, list my recent
transactions, and convert my balance to USD.") on the scripted model, measured in one run:
  in-process   support-bot's A2A app, the scripted model's HTTP API and the three MCP
               servers on 127.0.0.1, no mesh (what the agent itself costs)
  cluster      an embedded cluster: a2a-sdk client → chatbot → (HBONE) support-bot →
               scripted model and, through the waypoint, the MCP servers
  ask          `trustusbank ask` as a whole process against that cluster (what a user waits)
Medians of sequential, warm prompts; ratios are to in-process. The write-up's path
(kind + Anthropic) answers in about 5 s a prompt; that figure is quoted, not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from tests.agents.a2a.support import Served  # noqa: E402

from mesh import start_cluster, stop_cluster  # noqa: E402
from trustusbank.agents.a2a.server import create_app  # noqa: E402
from trustusbank.agents.model.factory import client_for  # noqa: E402
from trustusbank.agents.scripted.http_app import create_app as model_app  # noqa: E402
from trustusbank.agents.scripted.model import ScriptedModel  # noqa: E402
from trustusbank.cluster.topology import Topology  # noqa: E402
from trustusbank.manifests.bundle import load_bundle  # noqa: E402
from trustusbank.manifests.kagent.controller import agent_spec  # noqa: E402
from trustusbank.workloads.chatbot.app import create_app as chatbot_app  # noqa: E402
from trustusbank.workloads.chatbot.client import ask  # noqa: E402
from trustusbank.workloads.entrypoints import WORKLOADS  # noqa: E402

PROMPT = (
    "I am customer 12345. Please check my balance, list my recent transactions, "
    "and convert my balance to USD."
)
AGENT = "trustusbank-bank-agents/support-bot"
SEED_SECONDS_PER_PROMPT = 5.0


async def prompts(base: str, count: int) -> list[float]:
    """Seconds per prompt, sequential, after one warm-up prompt."""
    await ask(PROMPT, chatbot=base, agent=AGENT)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        result = await ask(PROMPT, chatbot=base, agent=AGENT)
        timings.append(time.perf_counter() - started)
        if "5,445.19" not in result.reply:
            raise SystemExit(f"unexpected reply: {result.reply!r}")
    return timings


def in_process(count: int, data: Path) -> list[float]:
    """support-bot as deploy/ declares it, pointed at servers on 127.0.0.1, asked through a chatbot."""
    builds: dict[str, Callable[[str], ASGIApp]] = {
        "account-mcp": lambda _: WORKLOADS["account-mcp"].app(db=data / "account.sqlite3"),
        "transaction-mcp": lambda _: WORKLOADS["transaction-mcp"].app(db=data / "txn.sqlite3"),
        "currency-converter": lambda _: WORKLOADS["currency-converter"].app(variant="clean"),
    }
    servers = {name: Served(build).start() for name, build in builds.items()}
    scripted = ScriptedModel()
    model = Served(lambda _: model_app(scripted, served_model_names=[scripted.model])).start()
    spec = agent_spec(load_bundle(ROOT / "deploy"), "trustusbank-bank-agents", "support-bot")
    spec = replace(
        spec,
        mcp_servers=tuple(replace(s, url=f"{servers[s.name].url}/mcp") for s in spec.mcp_servers),
        sub_agents=(),
        access=(),
        access_enforced=False,
        model=replace(spec.model, base_url=f"{model.url}/v1"),
    )
    agent = Served(
        lambda url: create_app(replace(spec, extra={"url": f"{url}/"}), client_for(spec.model, {}))
    )
    agent.start()
    chatbot = Served(lambda _: chatbot_app(agents_url=lambda ns, name: agent.url)).start()
    try:
        return asyncio.run(prompts(chatbot.url, count))
    finally:
        for server in (chatbot, agent, model, *servers.values()):
            server.stop()


def whole_process(base: str, count: int, state: Path) -> list[float]:
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(state)}
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "trustusbank", "ask", PROMPT, "--chatbot", base],
            capture_output=True,
            text=True,
            env=env,
        )
        timings.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"ask failed: {done.stderr}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts")
    opts = parser.parse_args()
    count = 5 if opts.quick else 20
    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="trustusbank-bench-") as tmp:
        print("measuring in-process…", file=sys.stderr)
        rows["in-process"] = statistics.median(in_process(count, Path(tmp)))
        state = Path(tmp) / "cluster-state"
        print("starting the embedded cluster…", file=sys.stderr)
        started = time.perf_counter()
        files = start_cluster(state)
        cold_start = time.perf_counter() - started
        try:
            topo = Topology.load(files.topology)
            chatbot = next(p for p in topo.pods if p.deployment == "chatbot")
            base = f"http://{chatbot.app_ip}:8080"
            print("measuring through the cluster…", file=sys.stderr)
            rows["cluster"] = statistics.median(asyncio.run(prompts(base, count)))
            print("measuring `trustusbank ask`…", file=sys.stderr)
            rows["ask"] = statistics.median(whole_process(base, max(3, count // 4), state))
        finally:
            stop_cluster(state)
    base_row = rows["in-process"]
    print(f"{'path':<12} {'median ms':>10} {'x in-process':>13}")
    for name, seconds in rows.items():
        print(f"{name:<12} {seconds * 1000:>10.1f} {seconds / base_row:>13.2f}")
    print(f"cluster cold start (up --detach): {cold_start:.1f} s")
    print(
        f"seed path (kind + Anthropic, quoted): ~{SEED_SECONDS_PER_PROMPT:.0f} s a prompt; "
        f"ours through the cluster: {rows['cluster'] * 1000:.0f} ms "
        f"({SEED_SECONDS_PER_PROMPT / rows['cluster']:.0f}x faster)"
    )


if __name__ == "__main__":
    main()
