"""Each act's change to the running system, and the receipts read back afterwards.

The changes are the act scripts themselves (`reset`, `upgrade-banking-app`,
`policies on|off`), called in-process so they are recorded exactly as the
commands record them. The receipts come from where an auditor would get them:
denies from the evidence store, alerts from the evaluator, mail from the SOC inbox.
Each is a frozen dataclass; its `to_dict()` is what `trustusbank demo --json` prints.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from trustusbank import evidence
from trustusbank.alerts import client as alerts
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.evidence.record import Record
from trustusbank.mesh.waypoint.ratelimit import RATE_LIMITED
from trustusbank.runtime import control
from trustusbank.runtime.defence import set_defence
from trustusbank.scenario import changes
from trustusbank.scenario.cluster import Cluster, Progress

ALERT_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class ActImage:
    """What runs behind the converter's tag once the act's change is made."""

    tag: str
    digest: str
    previous_digest: str | None
    build: str  # the converter build (variant) behind the digest
    signature: str  # org | untrusted | unsigned: the digest's signature checked against the org key
    pushed: bool  # the act moved the tag

    @classmethod
    def of(cls, swap: changes.Swap) -> ActImage:
        return cls(swap.tag, swap.new_digest, swap.old_digest, swap.variant, swap.signature, swap.pushed)

    def to_dict(self) -> dict[str, Any]:
        # The JSON calls the signature check "signer", as the acts print it ("signed by untrusted").
        return {
            "tag": self.tag,
            "digest": self.digest,
            "previous_digest": self.previous_digest,
            "build": self.build,
            "signer": self.signature,
            "pushed": self.pushed,
        }


@dataclass(frozen=True)
class ToolCall:
    """One step of support-bot's tool-call chain, as the chatbot reported it."""

    name: str
    arguments: dict[str, Any]
    is_error: bool
    reported: dict[str, Any]  # the step as reported (server, result, a sub-agent's steps...), for --json

    @classmethod
    def of(cls, step: dict[str, Any]) -> ToolCall:
        arguments = step.get("arguments")
        return cls(
            name=str(step.get("name")),
            arguments=arguments if isinstance(arguments, dict) else {},
            is_error=bool(step.get("is_error")),
            reported=step,
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.reported)


@dataclass(frozen=True)
class Deny:
    """A deny from the evidence store: who was refused, where, by which policy, running which image."""

    kind: str
    source: str
    source_identity: str | None
    destination_identity: str | None
    workload: str | None
    image: str | None
    digest: str | None
    policy: str | None
    trace_id: str | None
    seq: int
    summary: str
    reason: str | None = None  # why, as the deciding proxy logged it ("rate limited", ...)

    @property
    def rate_limited(self) -> bool:
        """A local rate limit refused the call: nobody's policy judged the caller."""
        return self.reason == RATE_LIMITED

    @classmethod
    def of(cls, record: Record) -> Deny:
        original = record.original()
        reason = original.get("reason") if isinstance(original, dict) else None
        return cls(
            kind=record.kind,
            source=record.source,
            source_identity=record.src_identity,
            destination_identity=record.dst_identity,
            workload=record.workload,
            image=record.image,
            digest=record.digest,
            policy=record.policy,
            trace_id=record.trace_id,
            seq=record.seq,
            summary=record.summary,
            reason=reason if isinstance(reason, str) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "source_identity": self.source_identity,
            "destination_identity": self.destination_identity,
            "destination": self.destination_identity,  # the same identity, under its older name
            "workload": self.workload,
            "image": self.image,
            "digest": self.digest,
            "policy": self.policy,
            "trace_id": self.trace_id,
            "seq": self.seq,
            "summary": self.summary,
            "reason": self.reason,
        }


def _mailed(alert: dict[str, Any]) -> bool:
    """The evaluator delivered the alert to the SOC inbox: it recorded `notified_at`."""
    return alert.get("notified_at") is not None


@dataclass(frozen=True)
class Alert:
    """An alert that fired during the act, as the evaluator reports it."""

    alertname: str
    state: str | None
    labels: dict[str, str]
    summary: str | None
    quarantine: str | None
    mailed: bool

    @classmethod
    def of(cls, alert: dict[str, Any]) -> Alert:
        annotations = alert.get("annotations") or {}
        return cls(
            alertname=alert["alertname"],
            state=alert.get("state"),
            labels=alert.get("labels", {}),
            summary=annotations.get("summary"),
            quarantine=annotations.get("quarantine"),
            mailed=_mailed(alert),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvidenceSummary:
    """The evidence chain after the acts: verified from the start, how many records, its head."""

    verified: bool
    records: int
    head: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _defence(cluster: Cluster, on: bool) -> None:
    await set_defence(cluster.files, control.deploy_of(cluster.files), on)


async def baseline(cluster: Cluster, progress: Progress) -> ActImage:
    """Act 1: the Solo-OFF baseline (`trustusbank reset`)."""
    report = await changes.reset(cluster.files, progress=progress)
    return ActImage.of(report.converter)


async def rug_pull(cluster: Cluster, progress: Progress) -> ActImage:
    """Act 2: no defence, and the vendor's new bytes under the same tag (`upgrade-banking-app`)."""
    await _defence(cluster, on=False)
    return ActImage.of(await changes.upgrade(cluster.files, progress=progress))


async def defence_on(cluster: Cluster, progress: Progress) -> ActImage:
    """Act 3: the rug-pulled build still running, and `policies on`."""
    swap = await changes.upgrade(cluster.files, progress=progress)
    progress("applying the defence set")
    await _defence(cluster, on=True)
    return ActImage.of(swap)


def denies_since(files: ClusterFiles, started: float) -> list[Deny]:
    """Every deny the evidence store holds since `started`, with who, where, image and digest."""
    evidence.ingest(files)
    store = evidence.open_store(files)
    since = datetime.fromtimestamp(started, UTC).isoformat()
    return [Deny.of(r) for r in evidence.query(store, evidence.Query(since=since, denies=True))]


async def alerts_since(
    cluster: Cluster, started: float, expected: tuple[str, ...], progress: Progress
) -> list[Alert]:
    """Alerts whose events grew since `started`; waits (bounded) until `expected` ones fired and were mailed.

    "Mailed" is the evaluator's record of SMTP delivery to the SOC inbox (`notified_at`): on a rerun
    within the grouping interval the mail from the first run stands, as Alertmanager's would.
    """
    url = alerts.alerts_url(cluster.files)
    found = await alerts.fired_alerts_async(url, started)
    if expected:
        progress(f"waiting for alerts: {', '.join(expected)}")
        deadline = time.monotonic() + ALERT_WAIT_SECONDS
        while time.monotonic() < deadline:
            done = {a["alertname"] for a in found if _mailed(a)}
            if set(expected) <= done:
                break
            await asyncio.sleep(0.3)
            found = await alerts.fired_alerts_async(url, started)
    return [Alert.of(a) for a in found]


def evidence_summary(files: ClusterFiles) -> EvidenceSummary:
    evidence.ingest(files)
    checked = evidence.verify(files)
    return EvidenceSummary(verified=checked.ok, records=checked.records, head=checked.head.hash)
