"""Soak benchmark: customers chatting for a fixed time while the rug pull and the defence flip.

    python benchmarks/soak.py [--quick] [--duration S] [--customers N] [--flip-every S] [--json]

On a cluster of its own (`<state>/soak`, loopback only, no port-forwards, the rate limit lifted as
every benchmark's is), started and stopped here and put at the story's baseline (`reset`: the
clean converter, no defence set, the bank's seed data): N customers (default 20) each send the bank's
prompts (the bench's user tasks that change no data) through the chatbot back to back, a new
conversation every few prompts, for `--duration` seconds. Every `--flip-every` seconds one thing
changes, in the cycle clean/off → rug pull/off → rug pull/on → clean/on: the vendor's rug pull
(`upgrade-banking-app`, and the clean build back) or the defence set (`policies on|off`).

Printed, per period (a minute; 10 s with --quick) as it ends and as a table at the end: prompts
completed, errors, wrong answers (the bench's checks), p50/p99 latency, exfil (requests the
attacker received, from its own counter) and the defence's state. Exfil counted while the defence
was on (from the moment every node proxy enforced it to the moment it was taken off) must be 0:
anything else is reported as a breach and the exit status is 1. Then evidence written vs expected
(every line of every evidence file up to where the final `evidence ingest` read is one record),
and the RSS/PSS and open file descriptors of every process of the cluster after the warm-up and at
the end (a leak shows as growth; a process restarted meanwhile is marked, not compared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from benchmarks.isolation_modes import load, say  # noqa: E402
from benchmarks.startup import MB, cluster_pids, rollup, stop_on_sigterm  # noqa: E402
from trustusbank.cluster.layout import ClusterFiles  # noqa: E402
from trustusbank.evidence import ingest  # noqa: E402
from trustusbank.evidence.ingest import FAMILIES  # noqa: E402
from trustusbank.images.converter_builds import CLEAN  # noqa: E402
from trustusbank.paths import deploy_dir, state_dir  # noqa: E402
from trustusbank.runtime import control  # noqa: E402
from trustusbank.runtime.defence import set_defence  # noqa: E402
from trustusbank.scenario import changes  # noqa: E402
from trustusbank.scenario.bench.defences import AGENT_NAMESPACE, AGENTS  # noqa: E402
from trustusbank.scenario.bench.harness import start_own_cluster  # noqa: E402
from trustusbank.scenario.bench.tasks import USER_TASKS, Outcome, UserTask  # noqa: E402
from trustusbank.scenario.cluster import SUPPORT_BOT, Cluster  # noqa: E402
from trustusbank.workloads.chatbot.client import ask  # noqa: E402

T = TypeVar("T")
PROMPTS = tuple(t for t in USER_TASKS if t.id != "fraud-handoff")  # it flags a transaction: data changes
TURNS_PER_CONVERSATION = 5  # then the customer starts a new conversation (a new A2A context)
ANSWER_WAIT = 60.0  # one prompt's bound; a slower answer is an error
PHASES = (("clean", False), ("rug pull", False), ("rug pull", True), ("clean", True))
ACTOR = "soak"
COMMAND = "benchmarks/soak.py"


@dataclass
class Prompt:
    """One prompt as the customer saw it."""

    task: str
    ended: float  # seconds since the soak began
    seconds: float
    ok: bool
    right: bool
    error: str | None = None
    wrong_reply: str | None = None  # what the customer was told, when the bench's check says wrong


@dataclass(frozen=True)
class Event:
    at: float  # seconds since the soak began, when the change started
    switch: str  # "converter" or "policies"
    value: str  # "clean" / "rug pull", "off" / "on"
    seconds: float  # how long the change took to be in force


@dataclass
class Timeline:
    """What the flipper changed and when, and the defence's state as the exfil sampler needs it."""

    defence_on: bool = False  # in force at every node proxy (set once the change has converged)
    rug_pulled: bool = False
    changes: int = 0  # bumped at the start and the end of every change
    events: list[Event] = field(default_factory=list)


@dataclass
class Exfil:
    """Attacker counter increases, each attributed to a sample interval and the defence's state in it."""

    gains: list[tuple[float, int, bool]] = field(
        default_factory=list
    )  # (at, requests, defence on throughout)

    @property
    def with_defence_on(self) -> int:
        return sum(n for _, n, on in self.gains if on)

    @property
    def total(self) -> int:
        return sum(n for _, n, _ in self.gains)


@dataclass(frozen=True)
class Proc:
    label: str
    pid: int
    pss: float  # MB
    rss: float  # MB
    fds: int


@dataclass
class Period:
    start: float
    completed: int = 0
    errors: int = 0
    wrong: int = 0
    p50: float | None = None
    p99: float | None = None
    exfil: int = 0
    defence: str = ""
    rug_pull: str = ""


# -- the customers --------------------------------------------------------------------


def customer_prompts(index: int) -> Iterator[tuple[UserTask, bool]]:
    """The customer's prompts in turn, each with whether it starts a new conversation."""
    n = index
    while True:
        yield PROMPTS[n % len(PROMPTS)], (n - index) % TURNS_PER_CONVERSATION == 0
        n += 1


async def customer(
    index: int, chatbot: str, began: float, until: float, out: list[Prompt], count: int | None = None
) -> None:
    """Customer `index` sends prompts back to back until `until` (or `count` of them), each recorded."""
    context: str | None = None
    for n, (task, fresh) in enumerate(customer_prompts(index)):
        if time.monotonic() >= until or n == count:
            return
        context = None if fresh else context
        started = time.monotonic()
        try:
            result = await ask(
                task.prompt, chatbot=chatbot, agent=SUPPORT_BOT, context_id=context, wait=ANSWER_WAIT
            )
        except Exception as exc:  # a failed prompt is counted with its cause, and the customer goes on
            ended = time.monotonic()
            cause = f"{type(exc).__name__}: {exc}"
            out.append(Prompt(task.id, ended - began, ended - started, False, False, cause))
            continue
        ended = time.monotonic()
        context = result.context_id or context
        ok = result.state == "completed"
        right = ok and task.check(Outcome(result.reply, list(result.tool_calls)))
        error = None if ok else f"task {result.state}: {result.status_message[:200]}"
        wrong = result.reply if ok and not right else None
        out.append(Prompt(task.id, ended - began, ended - started, ok, right, error, wrong))


# -- the flips and the attacker's counter ---------------------------------------------


async def flip(
    files: ClusterFiles, deploy: Path, timeline: Timeline, to: tuple[str, bool], began: float
) -> None:
    """Move to phase `to`: one of the rug pull or the defence changes."""
    quiet = lambda _: None  # noqa: E731
    started = time.monotonic()
    timeline.changes += 1
    rug, defence = to
    if (rug == "rug pull") != timeline.rug_pulled:
        if rug == "rug pull":
            await changes.upgrade(files, progress=quiet, actor=ACTOR, command=COMMAND)
        else:
            reason = "soak: the clean build back"
            await changes.swap_converter(
                files, CLEAN, reason=reason, progress=quiet, actor=ACTOR, command=COMMAND
            )
        timeline.rug_pulled = rug == "rug pull"
        switch, value = "converter", rug
    else:
        timeline.defence_on = False  # off from the moment it starts coming off; on only once in force
        await set_defence(files, deploy, defence)
        timeline.defence_on = defence
        switch, value = "policies", "on" if defence else "off"
    timeline.changes += 1
    timeline.events.append(Event(started - began, switch, value, time.monotonic() - started))


async def flipper(
    files: ClusterFiles, deploy: Path, timeline: Timeline, every: float, began: float, until: float
) -> None:
    phase = 0
    while time.monotonic() + every < until:
        await asyncio.sleep(every)
        phase = (phase + 1) % len(PHASES)
        await flip(files, deploy, timeline, PHASES[phase], began)


async def sample_exfil(
    attacker: str, timeline: Timeline, exfil: Exfil, began: float, stop: asyncio.Event
) -> None:
    """The attacker's total every half second; a gain counts as 'defence on' only if it was on throughout."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:

        async def total() -> int:
            return int((await http.get(f"{attacker}/api/count")).raise_for_status().json()["total"])

        last, mark, was_on = await total(), timeline.changes, timeline.defence_on
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            now, on = await total(), timeline.defence_on
            if now > last:
                exfil.gains.append(
                    (time.monotonic() - began, now - last, was_on and on and mark == timeline.changes)
                )
            last, mark, was_on = now, timeline.changes, on


# -- memory, file descriptors, evidence -----------------------------------------------


def labels(files: ClusterFiles) -> dict[int, str]:
    """Each known pid's name: the supervisor, istiod, the zygote, a node proxy, a pod (by Deployment),
    the console."""
    status = control.read_status(files) or {}
    named = {int(status.get("pid") or 0): "supervisor", int(status.get("zygote_pid") or 0): "pod zygote"}
    for part in status.get("control_plane", []):
        named[int(part.get("pid") or 0)] = str(part["name"])
    for node in status.get("nodes", []):
        named[int(node.get("ztunnel_pid") or 0)] = f"ztunnel {node['name'].removeprefix('trustusbank-')}"
    for pod in status.get("pods", []):
        deployment = re.sub(r"-\d+$", "", pod["name"])
        named[int(pod.get("pid") or 0)] = f"{pod['namespace'].removeprefix('trustusbank-')}/{deployment}"
    console = status.get("console") or {}
    named[int(console.get("pid") or 0)] = "console"
    return named


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def processes(files: ClusterFiles) -> dict[str, Proc]:
    named = labels(files)
    found: dict[str, Proc] = {}
    for pid in cluster_pids(str(files.state)):
        memory = rollup(pid)
        if memory is None:
            continue
        label = named.get(pid, f"pid {pid}")
        label = label if label not in found else f"{label} ({pid})"
        found[label] = Proc(label, pid, memory[0] / MB, memory[1] / MB, fds(pid))
    return found


async def dropped(cluster: Cluster) -> dict[str, float]:
    """What each agent forgot to stay bounded, from its /metrics: every `*_dropped_total` sample."""
    found: dict[str, float] = {}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        for agent in AGENTS:
            response = await http.get(f"{cluster.url(AGENT_NAMESPACE, agent)}/metrics")
            for family in text_string_to_metric_families(response.raise_for_status().text):
                for sample in family.samples:
                    if sample.name.endswith("_dropped_total"):
                        what = sample.labels.get("what")
                        name = sample.name.removeprefix("trustusbank_").removesuffix("_dropped_total")
                        found[f"{agent} {name}{f' ({what})' if what else ''}"] = sample.value
    return found


def evidence_check(files: ClusterFiles) -> tuple[int, int, int]:
    """Run `evidence ingest`; then (records written by it, records of the evidence files' current lines,
    non-empty lines of those files up to where the ingest read): the last two must be equal."""
    appended = ingest(files)
    expected = written = 0
    with sqlite3.connect(f"file:{files.evidence_db}?mode=ro", uri=True) as conn:
        for family in FAMILIES:
            for path in files.outputs(family.directory, family.pattern):
                name = path.relative_to(files.root).as_posix()
                row = conn.execute(
                    "SELECT generation, offset FROM sources WHERE file = ?", (name,)
                ).fetchone()
                if row is None:
                    continue
                generation, offset = row
                with path.open("rb") as handle:
                    expected += sum(1 for line in handle.read(offset).splitlines() if line.strip())
                prefix = f"{name}#{generation}:"
                sql = "SELECT COUNT(*) FROM records WHERE substr(origin, 1, ?) = ?"
                written += conn.execute(sql, (len(prefix), prefix)).fetchone()[0]
    return appended, written, expected


# -- the run --------------------------------------------------------------------------


@dataclass
class Soak:
    duration: float
    customers: int
    flip_every: float
    period: float
    prompts: list[Prompt] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)
    exfil: Exfil = field(default_factory=Exfil)
    memory_start: dict[str, Proc] = field(default_factory=dict)
    memory_middle: dict[str, Proc] = field(default_factory=dict)  # half-way: a leak grows in both halves
    memory_end: dict[str, Proc] = field(default_factory=dict)
    evidence: tuple[int, int, int] = (0, 0, 0)
    drops: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def periods(self) -> list[Period]:
        count = max(1, int(-(-self.seconds // self.period)))
        rows = [Period(start=n * self.period) for n in range(count)]

        def row(at: float) -> Period:
            return rows[min(int(at // self.period), count - 1)]

        for p in self.prompts:
            r = row(p.ended)
            r.completed += p.ok
            r.errors += not p.ok
            r.wrong += p.ok and not p.right
        for at, n, _ in self.exfil.gains:
            row(at).exfil += n
        for r in rows:
            times = sorted(p.seconds for p in self.prompts if p.ok and row(p.ended) is r)
            if times:
                r.p50 = statistics.median(times)
                r.p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            r.defence = _states(self.timeline.events, r.start, r.start + self.period, "policies", "off")
            r.rug_pull = _states(self.timeline.events, r.start, r.start + self.period, "converter", "clean")
        return rows


def _states(events: list[Event], start: float, end: float, switch: str, initial: str) -> str:
    """The values one switch had during [start, end): 'off', or 'off→on' when it changed (once in force)."""
    mine = [(e.at + e.seconds, e.value) for e in events if e.switch == switch]
    before = [v for t, v in mine if t < start]
    seen = [before[-1] if before else initial] + [v for t, v in mine if start <= t < end]
    return "→".join(v for i, v in enumerate(seen) if i == 0 or v != seen[i - 1])


async def drive(files: ClusterFiles, soak: Soak) -> None:
    cluster = Cluster(files)
    deploy = control.deploy_of(files)
    # A previous soak's state directory keeps its last phase (the converter's tag, the policies).
    await changes.reset(files, progress=say, actor=ACTOR, command=COMMAND)
    say(f"warm-up: one prompt per customer ({soak.customers})…")
    warm: list[Prompt] = []
    now = time.monotonic()
    await asyncio.gather(
        *(customer(i, cluster.chatbot, now, now + 600, warm, 1) for i in range(soak.customers))
    )
    failed = [p.error for p in warm if not p.ok]
    if failed:
        say(f"warm-up: {len(failed)} of {len(warm)} prompts failed, the first: {failed[0]}")
    soak.memory_start = processes(files)
    began = time.monotonic()
    until = began + soak.duration
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_exfil(cluster.attacker, soak.timeline, soak.exfil, began, stop))
    reporter = asyncio.create_task(report_progress(soak, began, until))
    middle = asyncio.create_task(_at(began + soak.duration / 2, lambda: processes(files)))
    say(f"soak: {soak.customers} customers for {soak.duration:g} s, a flip every {soak.flip_every:g} s")
    try:
        await asyncio.gather(
            flipper(files, deploy, soak.timeline, soak.flip_every, began, until),
            *(customer(i, cluster.chatbot, began, until, soak.prompts) for i in range(soak.customers)),
        )
    finally:
        soak.seconds = time.monotonic() - began
        stop.set()
        await sampler
        reporter.cancel()
    soak.memory_middle = await middle
    soak.memory_end = processes(files)
    soak.drops = await dropped(cluster)
    say("evidence ingest…")
    soak.evidence = await asyncio.to_thread(evidence_check, files)


async def _at(moment: float, read: Callable[[], T]) -> T:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))
    return read()


async def report_progress(soak: Soak, began: float, until: float) -> None:
    """A line per period as it ends."""
    n = 1
    while True:
        await asyncio.sleep(max(0.0, began + n * soak.period - time.monotonic()))
        soak.seconds = time.monotonic() - began
        row = soak.periods()[n - 1]
        say(f"  {_clock(row.start)}  {_line(row)}")
        n += 1


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def _line(r: Period) -> str:
    return (
        f"{r.completed:>9} {r.errors:>6} {r.wrong:>5} {_ms(r.p50):>8} {_ms(r.p99):>8} {r.exfil:>5}"
        f"  {r.defence:<10} {r.rug_pull}"
    )


HEAD = (
    f"{'from':>7}  {'completed':>9} {'errors':>6} {'wrong':>5} {'p50 ms':>8} {'p99 ms':>8} {'exfil':>5}"
    f"  {'defence':<10} converter"
)


def summary(soak: Soak) -> dict[str, Any]:
    done = [p for p in soak.prompts if p.ok]
    times = sorted(p.seconds for p in done)
    appended, written, expected = soak.evidence
    errors: dict[str, int] = {}
    for p in soak.prompts:
        if p.error:
            errors[p.error[:160]] = errors.get(p.error[:160], 0) + 1
    return {
        "duration_s": round(soak.seconds, 1),
        "customers": soak.customers,
        "flip_every_s": soak.flip_every,
        "prompts": len(soak.prompts),
        "completed": len(done),
        "errors": len(soak.prompts) - len(done),
        "error_rate": (len(soak.prompts) - len(done)) / len(soak.prompts) if soak.prompts else None,
        "wrong_answers": sum(not p.right for p in done),
        "wrong_by_task": {t.id: sum(p.task == t.id and not p.right for p in done) for t in PROMPTS},
        "wrong_examples": [
            {"at_s": round(p.ended, 1), "task": p.task, "reply": p.wrong_reply} for p in done if p.wrong_reply
        ][:5],
        "p50_ms": round(statistics.median(times) * 1000) if times else None,
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000) if times else None,
        "exfil_total": soak.exfil.total,
        "exfil_with_defence_on": soak.exfil.with_defence_on,
        "evidence": {"ingested_at_end": appended, "written": written, "expected": expected},
        "flips": [asdict(e) for e in soak.timeline.events],
        "dropped": soak.drops,
        "error_causes": errors,
    }


def memory_rows(soak: Soak) -> list[dict[str, Any]]:
    rows = []
    for label in sorted(set(soak.memory_start) | set(soak.memory_end)):
        a, m, b = (s.get(label) for s in (soak.memory_start, soak.memory_middle, soak.memory_end))
        restarted = a is None or b is None or a.pid != b.pid
        whole = not restarted and a is not None and b is not None
        second = whole and m is not None and a is not None and m.pid == a.pid
        rows.append(
            {
                "process": label,
                "start": asdict(a) if a else None,
                "end": asdict(b) if b else None,
                "restarted": restarted,
                "pss_growth_mb": round(b.pss - a.pss, 1) if whole and a and b else None,
                "rss_growth_mb": round(b.rss - a.rss, 1) if whole and a and b else None,
                "pss_growth_second_half_mb": round(b.pss - m.pss, 1) if second and m and b else None,
            }
        )
    return rows


def render(soak: Soak, before: str, after: str) -> None:
    s = summary(soak)
    print(f"== soak ({before} at start, {after} at end) ==")
    print(
        f"{s['customers']} customers for {s['duration_s']:g} s, a flip every {s['flip_every_s']:g} s: "
        f"{s['prompts']} prompts, {s['completed']} completed, error rate "
        f"{(s['error_rate'] or 0):.2%}, {s['wrong_answers']} wrong answers, "
        f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms"
    )
    wrong = ", ".join(f"{task} {n}" for task, n in s["wrong_by_task"].items() if n)
    print(f"wrong answers by task: {wrong or 'none'}")
    for example in s["wrong_examples"][:3]:  # what a wrong answer said, and when (beside the flips below)
        said = " ".join(str(example["reply"]).split())[:160]
        print(f"  {_clock(example['at_s'])} {example['task']}: {said}")
    print(HEAD)
    for row in soak.periods():
        print(f"{_clock(row.start):>7}  {_line(row)}")
    print(
        "flips (when, what, seconds until in force): "
        + ", ".join(f"{_clock(e['at'])} {e['switch']} {e['value']} {e['seconds']:.1f}s" for e in s["flips"])
    )
    on = s["exfil_with_defence_on"]
    print(
        f"exfil: {s['exfil_total']} in all, {on} while the defence was on"
        + ("" if on == 0 else "  <-- DEFENCE BREACH")
    )
    ev = s["evidence"]
    verdict = "every line recorded" if ev["written"] == ev["expected"] else "MISMATCH"
    print(
        f"evidence: {ev['written']} records of {ev['expected']} evidence lines ({verdict}); "
        f"the last ingest added {ev['ingested_at_end']}"
    )
    for cause, n in sorted(s["error_causes"].items(), key=lambda kv: -kv[1])[:5]:
        print(f"  error x{n}: {cause}")
    print(
        "kept in memory, dropped to stay bounded: " + ", ".join(f"{k} {v:g}" for k, v in s["dropped"].items())
    )
    print(f"{'process':<36} {'PSS MB':>13} {'RSS MB':>13} {'fds':>9}  growth PSS/RSS MB, PSS in the 2nd half")
    for r in memory_rows(soak):
        a, b = r["start"], r["end"]
        half = r["pss_growth_second_half_mb"] or 0.0
        growth = (
            "restarted"
            if r["restarted"]
            else f"{r['pss_growth_mb']:+.1f} / {r['rss_growth_mb']:+.1f}, {half:+.1f}"
        )
        columns = " ".join(_pair(a, b, key, fmt, width) for key, fmt, width in MEMORY_COLUMNS)
        print(f"{r['process']:<36} {columns}  {growth}")
    total_a = sum(p.pss for p in soak.memory_start.values())
    total_b = sum(p.pss for p in soak.memory_end.values())
    total_m = sum(p.pss for p in soak.memory_middle.values())
    print(
        f"cluster PSS {total_a:.0f} MB after the warm-up, {total_m:.0f} MB half-way, "
        f"{total_b:.0f} MB at the end"
    )


MEMORY_COLUMNS = (("pss", ".1f", 13), ("rss", ".1f", 13), ("fds", "d", 9))


def _pair(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str, fmt: str, width: int) -> str:
    """'start→end' of one figure."""
    shown = f"{format(a[key], fmt) if a else '-'}→{format(b[key], fmt) if b else '-'}"
    return f"{shown:>{width}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="40 s, 4 customers, a flip every 9 s, 10 s periods"
    )
    parser.add_argument("--duration", type=float, help="seconds of load (default 600)")
    parser.add_argument("--customers", type=int, help="concurrent customers (default 20)")
    parser.add_argument("--flip-every", type=float, help="seconds between flips (default 60)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--state", type=Path, help="the soak's state directory (default <state dir>/soak)")
    opts = parser.parse_args()
    quick = opts.quick
    soak = Soak(
        duration=opts.duration or (40.0 if quick else 600.0),
        customers=opts.customers or (4 if quick else 20),
        flip_every=opts.flip_every or (9.0 if quick else 60.0),
        period=10.0 if quick else 60.0,
    )
    stop_on_sigterm()
    files = ClusterFiles(opts.state or state_dir() / "soak")
    before = load()
    try:
        start_own_cluster(files, deploy_dir(), say, "the soak's")
        asyncio.run(drive(files, soak))
    finally:
        if control.running_pid(files) is not None:
            control.stop(files, say)
    after = load()
    if opts.json:
        print(
            json.dumps(
                {
                    **summary(soak),
                    "periods": [asdict(p) for p in soak.periods()],
                    "processes": memory_rows(soak),
                    "load": {"start": before, "end": after},
                },
                indent=2,
            )
        )
    else:
        render(soak, before, after)
    if soak.exfil.with_defence_on:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
