"""The two isolation modes side by side, for benchmarks/demo.py and benchmarks/mesh.py.

Each benchmark measures in both modes in one run, interleaved (ABAB) to spread machine
noise, then prints `table`: metric, namespaces, cooperative, namespaces/cooperative, and
a verdict on the judged rows (isolation may not make them worse by more than 10 %).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

NAMESPACES = "namespaces"
COOPERATIVE = "cooperative"
MODES = (NAMESPACES, COOPERATIVE)
BOUND = 0.10


def add_mode_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=[*MODES, "both"],
        default="both",
        help="isolation mode(s) to measure (default both, interleaved)",
    )


def wanted(choice: str) -> list[str]:
    return list(MODES) if choice == "both" else [choice]


def mode_env(mode: str) -> dict[str, str]:
    return {"TRUSTUSBANK_ISOLATION": mode}


def unavailable(asked: str, isolation: dict[str, object] | None, failure: str = "") -> str | None:
    """Why `asked` was not what the cluster ran, or None when it was."""
    if failure:
        return f"{asked} unavailable: {failure.strip()[-400:]}"
    got = (isolation or {}).get("mode")
    if got != asked:
        return f"{asked} unavailable: asked for {asked}, status says {got or 'nothing'}: " + str(
            (isolation or {}).get("summary", "")
        )
    return None


def say(message: str) -> None:
    print(message, file=sys.stderr)


def rounds(modes: Sequence[str], count: int) -> Iterator[str]:
    """ABAB…: each round runs every mode once; the order flips each round (AB BA AB …)."""
    for n in range(count):
        yield from (modes if n % 2 == 0 else list(reversed(modes)))


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


@dataclass(frozen=True)
class Metric:
    name: str
    values: dict[str, float]  # mode -> value
    higher_is_better: bool = False
    judged: bool = False  # part of the 10 % verdict
    fmt: str = ".2f"

    def ratio(self) -> float | None:
        ns, coop = self.values.get(NAMESPACES), self.values.get(COOPERATIVE)
        return ns / coop if ns is not None and coop else None

    def worse_by(self) -> float | None:
        """How much worse namespaces is than cooperative (negative: better)."""
        r = self.ratio()
        if r is None:
            return None
        return 1 - r if self.higher_is_better else r - 1


def table(metrics: Sequence[Metric], notes: Sequence[str]) -> None:
    width = max(len(m.name) for m in metrics) + 2
    print(f"{'metric':<{width}} {NAMESPACES:>11} {COOPERATIVE:>11} {'ns/coop':>8}  judged")
    for m in metrics:
        cells = [f"{m.values[mode]:>11{m.fmt}}" if mode in m.values else f"{'n/a':>11}" for mode in MODES]
        r = m.ratio()
        ratio = f"{r:>8.3f}" if r is not None else f"{'n/a':>8}"
        how = ("higher better" if m.higher_is_better else "lower better") if m.judged else ""
        print(f"{m.name:<{width}} {' '.join(cells)} {ratio}  {how}".rstrip())
    for note in notes:
        print(note)
    judged = [m for m in metrics if m.judged and m.worse_by() is not None]
    if not judged:
        print("verdict: not judged (only one mode measured)")
        return
    worst = max(judged, key=lambda m: m.worse_by() or 0.0)
    by = worst.worse_by() or 0.0
    holds = all((m.worse_by() or 0.0) <= BOUND for m in judged)
    print(
        f"verdict: isolation {'stays within' if holds else 'EXCEEDS'} the {BOUND:.0%} bound "
        f"(worst judged row: {worst.name}, namespaces {'worse' if by > 0 else 'better'} by {abs(by):.1%})"
    )
