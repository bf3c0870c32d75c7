"""Where the story is played: the embedded cluster, or a real Kubernetes cluster.

The acts (`scenario/acts.py`) and their verdict (`scenario/verdict.py`) are one piece of
code; what differs is how a change is made and where a receipt is read. A driver makes the
acts' three changes, asks the chatbot, and reads back the attacker's counter, the denies,
the alerts and the evidence chain, each in the receipts' own types.
"""

from __future__ import annotations

from typing import Protocol

from trustusbank.scenario.cluster import SUPPORT_BOT, Progress
from trustusbank.scenario.receipts import ActImage, Alert, Deny, EvidenceSummary
from trustusbank.workloads.chatbot.client import AskResult


class StoryDriver(Protocol):
    @property
    def where(self) -> str:
        """Which cluster, in words (shown with the receipts)."""

    async def baseline(self, progress: Progress) -> ActImage:
        """Act 1's change: `reset` (clean converter, no defence, seed data, attacker's view at zero)."""

    async def rug_pull(self, progress: Progress) -> ActImage:
        """Act 2's change: defence off, the vendor's new bytes under the same tag."""

    async def defence_on(self, progress: Progress) -> ActImage:
        """Act 3's change: the rug-pulled build still running, and the defence set applied."""

    async def ask(self, prompt: str, agent: str = SUPPORT_BOT) -> AskResult:
        """The customer's question through the chatbot, as the browser asks it."""

    def exfil_total(self) -> int:
        """Every request the attacker ever received."""

    def denies_since(self, started: float) -> list[Deny]:
        """The denies on record since `started` (epoch seconds), with identity, image and digest."""

    async def alerts_since(
        self, started: float, expected: tuple[str, ...], progress: Progress
    ) -> list[Alert]:
        """Alerts that fired since `started`; waits, bounded, for `expected` to fire and be mailed."""

    def evidence_summary(self) -> EvidenceSummary:
        """The evidence chain after the acts: verified, its length and head."""
