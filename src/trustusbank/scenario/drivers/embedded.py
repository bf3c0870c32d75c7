"""The story on the embedded cluster: changes made in-process, receipts from its own stores."""

from __future__ import annotations

from dataclasses import dataclass

import trustusbank.scenario.receipts as receipts
from trustusbank.scenario.cluster import SUPPORT_BOT, Cluster, Progress
from trustusbank.scenario.receipts import ActImage, Alert, Deny, EvidenceSummary
from trustusbank.workloads.chatbot.client import AskResult


@dataclass
class EmbeddedDriver:
    cluster: Cluster

    @property
    def where(self) -> str:
        return f"the embedded cluster in {self.cluster.files.state}"

    async def baseline(self, progress: Progress) -> ActImage:
        return await receipts.baseline(self.cluster, progress)

    async def rug_pull(self, progress: Progress) -> ActImage:
        return await receipts.rug_pull(self.cluster, progress)

    async def defence_on(self, progress: Progress) -> ActImage:
        return await receipts.defence_on(self.cluster, progress)

    async def ask(self, prompt: str, agent: str = SUPPORT_BOT) -> AskResult:
        return await self.cluster.ask(prompt, agent)

    def exfil_total(self) -> int:
        return self.cluster.exfil_total()

    def denies_since(self, started: float) -> list[Deny]:
        return receipts.denies_since(self.cluster.files, started)

    async def alerts_since(
        self, started: float, expected: tuple[str, ...], progress: Progress
    ) -> list[Alert]:
        return await receipts.alerts_since(self.cluster, started, expected, progress)

    def evidence_summary(self) -> EvidenceSummary:
        return receipts.evidence_summary(self.cluster.files)
