"""Start-up benchmark: how fast the CLI and the embedded cluster start, and what the cluster holds.

    python benchmarks/startup.py [--quick] [--json]
    python benchmarks/startup.py --commands [--baseline OLD/src] [--json]

Measured in one run, each figure as whole processes (`python -m trustusbank ...`), in temporary
state directories with the seed's local ports off (TRUSTUSBANK_PORT_FORWARDS=0):
  --help            `trustusbank --help` (median), and how many of the libraries a help screen
                    has no use for (tests/cli/test_imports.py's list) it imported
  cold up           `up --detach` in a fresh state directory, until every pod is ready
  cluster PSS/RSS   the sum of Pss and Rss in /proc/<pid>/smaps_rollup over every process of
                    that cluster (the supervisor and all its descendants: node proxies, pods,
                    console), right after `up` and again after the warm runs below
  warm ask          `trustusbank ask "<seed prompt>"` against that cluster (median), beside the
                    same prompt timed inside one warm client process (the cluster's answer) and
                    the difference (what being a process costs: start-up, imports, first call)
  warm demo         `trustusbank demo --json` against that cluster: the three acts only
  cold demo         `trustusbank demo --json` in a fresh state directory: start, acts, stop
Each row: the measured value, issue 15's target, value/target and a verdict (met: ratio ≤ 1).
Every cluster it starts is stopped (`down`) whatever happens, Ctrl-C and SIGTERM included.

`--commands` instead times every help screen (the root's, each command's, each group's
subcommands', as tests/cli/test_imports.py lists them; median of 5) and counts the heavy libraries
each imported; with `--baseline`, the same screens from another tree's src directory (an older
commit's checkout), alternated run by run with this tree's so both see the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trustusbank.cluster.layout import ClusterFiles  # noqa: E402
from trustusbank.scenario.cluster import SEED_PROMPT  # noqa: E402

sys.path.insert(0, str(ROOT))
from benchmarks.isolation_modes import load, say  # noqa: E402
from benchmarks.rate_limit import lift_rate_limit  # noqa: E402

# What `--help` should never load (tests/cli/test_imports.py says the same).
HEAVY = frozenset({"mcp", "a2a", "cel", "cryptography", "httpx", "uvicorn", "starlette"})
MB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    """One printed figure: what was measured, the issue's target for it (None: no target)."""

    name: str
    value: float
    target: float | None
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.target if self.target else None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        return "met" if self.value <= self.target else "MISSED"

    @property
    def shown(self) -> str:
        return f"{self.value:.2f} {self.unit}" if self.value < 100 else f"{self.value:.0f} {self.unit}"


def environment(state: str, src: Path = ROOT / "src") -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
        "TRUSTUSBANK_STATE_DIR": state,
        "TRUSTUSBANK_PORT_FORWARDS": "0",
        "TRUSTUSBANK_DEPLOY_DIR": str(ROOT / "deploy"),
    }


def cli(
    env: dict[str, str], *args: str, python: tuple[str, ...] = ()
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run `trustusbank <args>` as its own process; its wall time and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *python, "-m", "trustusbank", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return time.perf_counter() - started, done


def checked(what: str, done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if done.returncode != 0:
        raise SystemExit(
            f"{what} failed ({done.returncode}):\n{done.stderr[-2000:]}\n"
            f"-- its output:\n{done.stdout[-4000:]}"
        )
    return done


def help_imports(env: dict[str, str], *args: str) -> set[str]:
    """The heavy libraries `trustusbank <args>` (default: `--help`) imported, read from `-X importtime`."""
    args = args or ("--help",)
    done = checked(" ".join(args), cli(env, *args, python=("-X", "importtime"))[1])
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    if "trustusbank" not in names:
        raise SystemExit("could not read -X importtime's log")
    return names & HEAVY


def cluster_pids(state: str) -> list[int]:
    """The supervisor of the cluster running from `state` and every process below it."""
    supervisor = int(ClusterFiles(Path(state)).pid.read_text().strip())
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The parent pid is the second field after the parenthesised command name.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [supervisor]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def rollup(pid: int) -> tuple[int, int] | None:
    """Pss and Rss (bytes) of one process from /proc/<pid>/smaps_rollup; None once it has exited."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # it exited between the listing and the read
        return None
    fields = {k: v.split()[0] for k, v in (line.split(":", 1) for line in text.splitlines()[1:])}
    return int(fields["Pss"]) * 1024, int(fields["Rss"]) * 1024


def memory(state: str) -> tuple[float, float, int]:
    """Sum of Pss and of Rss (MB) over the cluster's processes, and how many were read."""
    read = [m for m in map(rollup, cluster_pids(state)) if m is not None]
    return sum(m[0] for m in read) / MB, sum(m[1] for m in read) / MB, len(read)


class Clusters:
    """Fresh state directories under one temporary root; `stop_all` stops each one's cluster."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.states: list[str] = []

    def new(self) -> str:
        state = tempfile.mkdtemp(prefix="state-", dir=self.root)
        self.states.append(state)
        return state

    def stop_all(self) -> None:
        for state in self.states:
            cli(environment(state), "down")


@contextlib.contextmanager
def clusters() -> Iterator[Clusters]:
    with tempfile.TemporaryDirectory(prefix="trustusbank-startup-", ignore_cleanup_errors=True) as root:
        made = Clusters(root)
        try:
            yield made
        finally:
            made.stop_all()


def timed(what: str, env: dict[str, str], *args: str) -> float:
    """Wall seconds of `trustusbank <args>`, which must succeed."""
    seconds, done = cli(env, *args)
    checked(what, done)
    return seconds


# One process, the client imported once, the seed prompt asked 1 + n times: the first warms the
# connection path, the rest time what the cluster takes to answer with no process start-up in it.
IN_PROCESS = """
import asyncio, json, sys, time
from pathlib import Path
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.paths import state_dir
from trustusbank.runtime.control import chatbot_url
from trustusbank.workloads.chatbot.client import ask
url = chatbot_url(ClusterFiles(state_dir()))
times = []
for _ in range(1 + int(sys.argv[2])):
    started = time.perf_counter()
    result = asyncio.run(ask(sys.argv[1], chatbot=url, agent="trustusbank-bank-agents/support-bot"))
    assert result.state == "completed", result
    times.append(time.perf_counter() - started)
print(json.dumps(times[1:]))
"""


def answers_in_process(env: dict[str, str], count: int) -> list[float]:
    """The cluster's answer to the seed prompt, timed inside one warm client process."""
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, SEED_PROMPT, str(count)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return [float(t) for t in json.loads(checked("in-process ask", done).stdout)]


def measure(quick: bool) -> tuple[list[Row], list[str]]:
    n_help, n_ask, n_warm, n_cold = (5, 3, 1, 1) if quick else (10, 10, 3, 3)
    notes: list[str] = []
    ups: list[float] = []
    pss_up: list[float] = []
    rss_up: list[float] = []
    colds: list[float] = []
    acts: list[float] = []
    with clusters() as made:
        env = environment(made.new())
        say("--help…")
        helps = [timed("--help", env, "--help") for _ in range(n_help)]
        heavy = help_imports(env)
        if heavy:
            notes.append("--help imported: " + ", ".join(sorted(heavy)))

        for n in range(n_cold):
            state = made.new()
            env = environment(state)
            if n == 0:  # the cluster the warm asks and demos run on, back to back
                lift_rate_limit(ClusterFiles(Path(state)))
            say(f"cold up --detach {n + 1}/{n_cold}…")
            ups.append(timed("up --detach", env, "up", "--detach"))
            pss, rss, count = memory(state)
            pss_up.append(pss)
            rss_up.append(rss)
            notes.append(f"cluster {n + 1}: {count} processes right after up")
            if n == 0:
                say("warm asks (as a user types it: the chatbot found from the state directory)…")
                answers_in_process(env, 2)  # the cluster's first answers after `up` are its slowest
                asks, answers = [], []
                for _ in range(n_ask):  # alternated, so both see the same machine
                    asks.append(timed("ask", env, "ask", SEED_PROMPT))
                    answers += answers_in_process(env, 1)
                say("warm demos…")
                warms = [timed("warm demo", env, "demo", "--json") for _ in range(n_warm)]
                pss_used, rss_used, count = memory(state)
                notes.append(f"cluster 1: {count} processes after the warm asks and demos")
            cli(env, "down")

        for n in range(n_cold):
            say(f"cold demo {n + 1}/{n_cold} (starts and stops its own cluster)…")
            seconds, done = cli(environment(made.new()), "demo", "--json")
            colds.append(seconds)
            acts.append(float(json.loads(checked("cold demo", done).stdout)["seconds"]))

    med = statistics.median
    rows = [
        Row("--help", med(helps), 0.3, "s", f"median of {n_help}"),
        Row("--help: heavy libraries imported", float(len(heavy)), 0.0, "", "of " + ", ".join(sorted(HEAVY))),
        Row("ask as a process, warm", med(asks), 1.0, "s", f"median of {n_ask}"),
        Row("  the cluster's answer in-process", med(answers), None, "s", "the same prompt, one warm client"),
        Row("  the process's own cost", med(asks) - med(answers), None, "s", "start-up, imports, first call"),
        Row("cold up --detach", med(ups), 5.0, "s", f"median of {n_cold}"),
        Row("cold demo", med(colds), 15.0, "s", f"median of {n_cold}; the acts {med(acts):.1f} s"),
        Row("warm demo", med(warms), 8.0, "s", f"median of {n_warm}"),
        Row("cluster PSS after up", med(pss_up), 400.0, "MB", "sum of smaps_rollup Pss"),
        Row("cluster PSS after use", pss_used, 400.0, "MB", "after the warm asks and demos"),
        Row("cluster RSS after up", med(rss_up), None, "MB", "shared pages counted in every process"),
        Row("cluster RSS after use", rss_used, None, "MB", ""),
    ]
    return rows, notes


def help_screens() -> list[tuple[str, ...]]:
    """Every help screen of the command surface: the root's, each command's, each group's subcommands'."""
    from trustusbank.cli.app import COMMANDS, load

    def under(command: object, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        subs: dict[str, object] = getattr(command, "commands", {})
        return [path, *(p for name, sub in subs.items() for p in under(sub, (*path, name)))]

    return [("--help",), *((*p, "--help") for name in COMMANDS for p in under(load(name), (name,)))]


@dataclass(frozen=True)
class HelpScreen:
    """One help screen's median wall time and heavy imports, in this tree and (if given) the baseline."""

    args: tuple[str, ...]
    seconds: float
    heavy: list[str]
    baseline_seconds: float | None = None
    baseline_heavy: list[str] | None = None


def measure_commands(runs: int, baseline: Path | None) -> list[HelpScreen]:
    """Each help screen `runs` times per tree, the trees alternated run by run (their order too)."""
    trees = [ROOT / "src", *([baseline] if baseline else [])]
    screens = help_screens()
    with tempfile.TemporaryDirectory(prefix="trustusbank-help-") as state:
        envs = [environment(state, src) for src in trees]
        times: dict[tuple[int, tuple[str, ...]], list[float]] = {}
        for n in range(runs):
            say(f"help screens, run {n + 1}/{runs}…")
            for args in screens:
                order = envs if n % 2 == 0 else envs[::-1]
                for env in order:
                    seconds, done = cli(env, *args)
                    checked(" ".join(args), done)
                    times.setdefault((envs.index(env), args), []).append(seconds)
        heavy = {
            (i, args): sorted(help_imports(env, *args)) for i, env in enumerate(envs) for args in screens
        }
    med = statistics.median
    return [
        HelpScreen(
            args,
            med(times[(0, args)]),
            heavy[(0, args)],
            med(times[(1, args)]) if baseline else None,
            heavy[(1, args)] if baseline else None,
        )
        for args in screens
    ]


def render_commands(screens: list[HelpScreen], baseline: Path | None) -> None:
    head = f"{'trustusbank …':<36} {'this tree':>9} {'heavy':>5}"
    if baseline:
        head += f" {'baseline':>9} {'heavy':>5} {'ratio':>6}"
    print(head)
    for s in screens:
        line = f"{' '.join(s.args):<36} {s.seconds:>8.2f}s {len(s.heavy):>5}"
        if s.baseline_seconds is not None and s.baseline_heavy is not None:
            ratio = s.seconds / s.baseline_seconds
            line += f" {s.baseline_seconds:>8.2f}s {len(s.baseline_heavy):>5} {ratio:>6.2f}"
        print(line)
    importing = [s for s in screens if s.heavy]
    heavy = ", ".join(sorted(HEAVY))
    print(f"help screens importing a heavy library ({heavy}): {len(importing)} of {len(screens)}")
    if baseline:
        before = [s for s in screens if s.baseline_heavy]
        print(f"  in the baseline: {len(before)} of {len(screens)}")
    if baseline:
        print(f"baseline: {baseline}; ratio: this tree's median / the baseline's")


def render(rows: list[Row]) -> None:
    print(f"{'figure':<34} {'measured':>10} {'target':>9} {'ratio':>7}  verdict  note")
    for row in rows:
        target = "-" if row.target is None else f"{row.target:g}"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        print(f"{row.name:<34} {row.shown:>10} {target:>9} {ratio:>7}  {row.verdict:<7}  {row.note}")


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the `finally` that stops the clusters runs."""

    def raise_exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, raise_exit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="one cluster, one demo of each kind, fewer repeats"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--commands", action="store_true", help="only every help screen: its time and heavy imports"
    )
    parser.add_argument(
        "--baseline", type=Path, help="with --commands: another tree's src directory, timed alongside"
    )
    opts = parser.parse_args()
    stop_on_sigterm()
    before = load()
    if opts.commands:
        screens = measure_commands(3 if opts.quick else 5, opts.baseline)
        if opts.json:
            print(
                json.dumps({"help_screens": [asdict(s) for s in screens], "load": [before, load()]}, indent=2)
            )
            return
        print(f"== help screens ({before} at start, {load()} at end; median of {3 if opts.quick else 5}) ==")
        render_commands(screens, opts.baseline)
        return
    rows, notes = measure(opts.quick)
    after = load()
    if opts.json:
        document = {
            "rows": [{**asdict(r), "ratio": r.ratio, "verdict": r.verdict} for r in rows],
            "notes": notes,
            "load": {"start": before, "end": after},
        }
        print(json.dumps(document, indent=2))
        return
    print(f"== start-up ({before} at start, {after} at end) ==")
    render(rows)
    for note in notes:
        print(note)
    print("ratio: measured/target, met when ≤ 1")


if __name__ == "__main__":
    main()
