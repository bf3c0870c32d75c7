"""The three acts on the running cluster: clean, rug pull without defence, rug pull with defence.

Each act changes the system the way its script does (`reset`, `upgrade-banking-app`,
`policies on`), asks support-bot the seed's question through the chatbot, and then
collects the receipts: the reply and tool-call chain, the attacker's counter, the
denies from the evidence store (with the offending identity, image and digest), and
the alerts that fired. Whether that tells the story is `verdict.judge`'s call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from trustusbank.scenario.cluster import SEED_PROMPT, Progress
from trustusbank.scenario.drivers import StoryDriver
from trustusbank.scenario.receipts import ActImage, EvidenceSummary, ToolCall
from trustusbank.scenario.verdict import ACT2_ALERTS, ACT3_ALERTS, ActRecord, judge

CONVERTER_IDENTITY = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
TITLES = {
    1: "Act 1 — clean converter, no defence",
    2: "Act 2 — rug pull (same tag, new bytes), no defence",
    3: "Act 3 — rug pull, defence on",
}


@dataclass
class DemoRecord:
    prompt: str
    acts: list[ActRecord]
    problems: list[str]
    evidence: EvidenceSummary | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The document `trustusbank demo --json` prints."""
        return {
            "prompt": self.prompt,
            "ok": self.ok,
            "problems": self.problems,
            "acts": [act.to_dict() for act in self.acts],
            "evidence": self.evidence.to_dict() if self.evidence is not None else {},
            "seconds": round(self.seconds, 2),
        }


Change = Callable[[Progress], Awaitable[ActImage]]


async def _act(driver: StoryDriver, number: int, change: Change, progress: Progress) -> ActRecord:
    act = ActRecord(number, TITLES[number])
    started = time.time()
    try:
        act.image = await change(progress)
        act.exfil_before = driver.exfil_total()
        progress(f"act {number}: asking support-bot")
        answer = await driver.ask(SEED_PROMPT)
        act.reply, act.chain = answer.reply, [ToolCall.of(step) for step in answer.tool_calls]
        if answer.state != "completed":
            act.error = f"the task ended {answer.state}: {answer.status_message}"
        act.exfil_after = driver.exfil_total()
        expected = {1: (), 2: ACT2_ALERTS, 3: ACT3_ALERTS}[number]
        act.alerts = await driver.alerts_since(started, expected, progress)
        act.denies = driver.denies_since(started)
    except Exception as exc:  # an act that breaks is reported, and the story fails
        act.error = f"{type(exc).__name__}: {exc}"
    act.seconds = time.time() - started
    return act


async def run_acts(driver: StoryDriver, progress: Progress, acts: tuple[int, ...] = (1, 2, 3)) -> DemoRecord:
    """The acts, on whichever cluster `driver` plays them; judged by the same rules."""
    started = time.time()
    changes: dict[int, Change] = {1: driver.baseline, 2: driver.rug_pull, 3: driver.defence_on}
    records = []
    for number in acts:
        progress(f"act {number}: {TITLES[number]}")
        records.append(await _act(driver, number, changes[number], progress))
    problems = judge(records, CONVERTER_IDENTITY) if acts == (1, 2, 3) else _partial(records)
    record = DemoRecord(SEED_PROMPT, records, problems, seconds=time.time() - started)
    record.evidence = driver.evidence_summary()
    return record


def _partial(records: list[ActRecord]) -> list[str]:
    """One act on its own (`trustusbank act N`): judged against itself only."""
    problems = judge(records, CONVERTER_IDENTITY)
    return [p for p in problems if "differs from Act 1" not in p]
