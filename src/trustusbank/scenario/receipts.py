"""Each act's change to the running system, and the receipts read back afterwards.

The changes are the act scripts themselves (`reset`, `upgrade-banking-app`,
`policies on|off`), called in-process so they are recorded exactly as the
commands record them. The receipts come from where an auditor would get them:
denies from the evidence store, alerts from the evaluator, mail from the SOC inbox.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from trustusbank import evidence
from trustusbank.alerts import client as alerts
from trustusbank.cluster.layout import DEFENCE_DIR
from trustusbank.paths import deploy_dir
from trustusbank.runtime.apply import apply, delete
from trustusbank.scenario import changes
from trustusbank.scenario.cluster import Cluster, Progress

ALERT_WAIT_SECONDS = 20.0
POLICY_PICKUP_SECONDS = 1.5  # node proxies and the waypoint reload applied policy within a second


def _image(swap: changes.Swap) -> dict[str, Any]:
    return {
        "tag": swap.tag,
        "digest": swap.new_digest,
        "previous_digest": swap.old_digest,
        "build": swap.variant,
        "signer": swap.signature,
        "pushed": swap.pushed,
    }


async def _defence(cluster: Cluster, on: bool) -> None:
    defence = [deploy_dir() / DEFENCE_DIR]
    changed = apply(cluster.files, deploy_dir(), defence) if on else delete(cluster.files, defence)
    if changed:
        await asyncio.sleep(POLICY_PICKUP_SECONDS)


async def baseline(cluster: Cluster, progress: Progress) -> dict[str, Any]:
    """Act 1: the Solo-OFF baseline (`trustusbank reset`)."""
    report = await changes.reset(cluster.files, progress=progress)
    return _image(report.converter)


async def rug_pull(cluster: Cluster, progress: Progress) -> dict[str, Any]:
    """Act 2: no defence, and the vendor's new bytes under the same tag (`upgrade-banking-app`)."""
    await _defence(cluster, on=False)
    return _image(await changes.upgrade(cluster.files, progress=progress))


async def defence_on(cluster: Cluster, progress: Progress) -> dict[str, Any]:
    """Act 3: the rug-pulled build still running, and `policies on`."""
    swap = await changes.upgrade(cluster.files, progress=progress)
    progress("applying the defence set")
    await _defence(cluster, on=True)
    return _image(swap)


def denies_since(cluster: Cluster, started: float) -> list[dict[str, Any]]:
    """Every deny the evidence store holds since `started`, with who, where, image and digest."""
    evidence.ingest(cluster.files)
    store = evidence.open_store(cluster.files)
    since = datetime.fromtimestamp(started, UTC).isoformat()
    found = evidence.query(store, evidence.Query(since=since, denies=True))
    return [
        {
            "kind": r.kind,
            "source": r.source,
            "source_identity": r.src_identity,
            "destination_identity": r.dst_identity,
            "destination": r.dst_identity,
            "workload": r.workload,
            "image": r.image,
            "digest": r.digest,
            "policy": r.policy,
            "trace_id": r.trace_id,
            "seq": r.seq,
            "summary": r.summary,
        }
        for r in found
    ]


async def alerts_since(
    cluster: Cluster, started: float, expected: tuple[str, ...], progress: Progress
) -> list[dict[str, Any]]:
    """Alerts whose events grew since `started`; waits (bounded) until `expected` ones fired and were mailed.

    "Mailed" is the evaluator's record of SMTP delivery to the SOC inbox (`notified_at`): on a rerun
    within the grouping interval the mail from the first run stands, as Alertmanager's would.
    """
    url = alerts.alerts_url(cluster.files)

    def mailed(alert: dict[str, Any]) -> bool:
        return alert.get("notified_at") is not None

    found = await alerts.fired_alerts_async(url, started)
    if expected:
        progress(f"waiting for alerts: {', '.join(expected)}")
        deadline = time.monotonic() + ALERT_WAIT_SECONDS
        while time.monotonic() < deadline:
            done = {a["alertname"] for a in found if mailed(a)}
            if set(expected) <= done:
                break
            await asyncio.sleep(0.3)
            found = await alerts.fired_alerts_async(url, started)
    return [
        {
            "alertname": a["alertname"],
            "state": a.get("state"),
            "labels": a.get("labels", {}),
            "summary": (a.get("annotations") or {}).get("summary"),
            "quarantine": (a.get("annotations") or {}).get("quarantine"),
            "mailed": mailed(a),
        }
        for a in found
    ]


def evidence_summary(cluster: Cluster) -> dict[str, Any]:
    evidence.ingest(cluster.files)
    checked = evidence.verify(cluster.files)
    return {"verified": checked.ok, "records": checked.records, "head": checked.head.hash}
