"""The story on a real cluster: kubectl makes the changes, the write-up's port-forwards are the front
doors, and the receipts come from the real engines' own output.

- Act 1 (`reset`): the clean converter build pushed under the same tag and the Deployment
  restarted, the defence set deleted, the bank's MCP servers restarted onto their seed data
  (their databases cannot be read from outside the pods, so they are always restarted), the
  attacker's view moved to zero.
- Act 2: defence off, the rug-pulled build pushed under the same tag, the Deployment restarted.
- Act 3: the defence set applied.
- Denies: ztunnel's access log (`kubectl logs` of the DaemonSet) and the waypoint's, mirrored
  into the evidence chain under `<state>/k8s` (`k8s/collect.py`), queried as on the embedded
  cluster. Digests: the pods' `imageID`. Alerts: Prometheus's `/api/v1/alerts`; mailed: an
  Alertmanager notification in mailpit naming the alert.

Image signatures are not checked on this path (no signing step runs on a cluster); the act's
image says `not checked`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

import trustusbank.scenario.receipts as receipts
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.k8s import observability, runner
from trustusbank.k8s.collect import Collector
from trustusbank.k8s.image import CLEAN_BUILD, RUG_PULL_BUILD
from trustusbank.k8s.kubectl import Kubectl
from trustusbank.k8s.lifecycle import policies_plan
from trustusbank.k8s.plan import Kube, Options, Plan, image_plan, rug_pull_steps
from trustusbank.k8s.steps import Step
from trustusbank.scenario.changes import BANK_DATA, BANK_NAMESPACE, CONVERTER, reset_attacker_view
from trustusbank.scenario.cluster import SUPPORT_BOT, Progress
from trustusbank.scenario.receipts import ActImage, Alert, Deny, EvidenceSummary
from trustusbank.workloads.chatbot.client import AskResult, ask

# Prometheus scrapes and evaluates every 30 s and Alertmanager waits 30 s to group: minutes, not seconds.
ALERT_WAIT_SECONDS = 240.0
# istiod pushes a changed AuthorizationPolicy to every ztunnel; nothing on the cluster says when it landed.
PROPAGATION_SECONDS = 5.0
NOT_CHECKED = "not checked"


@dataclass
class KubernetesDriver:
    options: Options
    endpoints: dict[str, str]  # chatbot, attacker, prometheus, mailpit: the port-forwards' URLs
    say: Callable[[str], None] = lambda _: None  # kubectl's own output, as `k8s` commands show it
    sleep: Callable[[float], Any] = asyncio.sleep
    _firing_before: dict[str, float] = field(default_factory=dict)  # alert labels -> its value then

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl(self.options.kube_context)

    @property
    def files(self) -> ClusterFiles:
        return ClusterFiles(self.options.workdir)

    @property
    def where(self) -> str:
        return f"Kubernetes context {self.options.kube_context or '(current)'}"

    # -- changes -----------------------------------------------------------------
    async def _run(self, plan: Plan) -> None:
        await asyncio.to_thread(runner.run, plan, self.say)

    def _converter_pods(self) -> list[dict[str, Any]]:
        namespace, name = CONVERTER
        pods = self.kubectl.items("pods", namespace, f"app={name}")
        return [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]

    def _running_digest(self) -> tuple[str, str | None]:
        """The converter's tag, and the digest its newest running pod runs."""
        newest: tuple[str, str, str | None] = ("", "", None)
        for pod in self._converter_pods():
            for status in pod.get("status", {}).get("containerStatuses") or []:
                started = (status.get("state") or {}).get("running", {}).get("startedAt") or ""
                image_id = str(status.get("imageID") or "")
                digest = image_id[image_id.index("sha256:") :] if "sha256:" in image_id else None
                if started >= newest[0]:
                    newest = (started, str(status.get("image") or ""), digest)
        return newest[1], newest[2]

    def _builds(self) -> dict[str, str]:
        try:
            return dict(json.loads((self.options.workdir / "converter-builds.json").read_text()))
        except (OSError, ValueError):
            return {}

    async def _converter(self, build: str, progress: Progress, reason: str) -> ActImage:
        """Push `build` under the converter's tag and restart onto it, unless that is what runs already."""
        self._snapshot_alerts()
        tag, before = self._running_digest()
        builds = self._builds()
        if before is not None and builds.get(build) == before:
            return ActImage(tag, before, before, build, NOT_CHECKED, pushed=False)
        progress(f"pushing the {build} converter build under {tag or 'its tag'} and restarting it")
        kube = Kube(self.options.kube_context)
        await self._run(Plan(rug_pull_steps(kube, image_plan(self.options), build)))
        tag, after = self._running_digest()
        if after is None:
            raise RuntimeError("the converter runs no container with a digest after its restart")
        builds[build] = after
        self.options.workdir.mkdir(parents=True, exist_ok=True)
        (self.options.workdir / "converter-builds.json").write_text(json.dumps(builds, indent=1))
        self.files.record_event(
            "image-pushed",
            {"image": tag, "digest": after, "previous_digest": before, "build": build,
             "workload": CONVERTER[1], "reason": reason},
        )  # fmt: skip
        return ActImage(tag, after, before, build, NOT_CHECKED, pushed=True)

    async def _defence(self, on: bool, progress: Progress) -> None:
        progress(f"defence set {'on' if on else 'off'}")
        await self._run(policies_plan(self.options, on))
        progress(f"waiting {PROPAGATION_SECONDS:.0f} s for istiod to push the change to every ztunnel")
        await self.sleep(PROPAGATION_SECONDS)

    async def upgrade(self, build: str, progress: Progress) -> ActImage:
        """`upgrade-banking-app --k8s`: `build` under the converter's tag, unless it runs already."""
        return await self._converter(build, progress, f"upgrade-banking-app: {build}")

    async def set_defence(self, on: bool, progress: Progress) -> None:
        """`policies on|off --k8s`: the defence set rendered for a cluster, applied or deleted."""
        await self._defence(on, progress)

    async def baseline(self, progress: Progress) -> ActImage:
        image = await self._converter(CLEAN_BUILD, progress, "reset: the clean build back under the tag")
        await self._defence(False, progress)
        progress("restarting the bank's MCP servers onto their seed data")
        kube = Kube(self.options.kube_context)
        restart = [
            kube.kubectl("rollout", "restart", f"deployment/{n}", "--namespace", BANK_NAMESPACE)
            for n in BANK_DATA
        ]
        wait = [kube.rollout_status(BANK_NAMESPACE, n) for n in BANK_DATA]
        await self._run(Plan([Step("", "the bank's data back to its seed", (*restart, *wait))]))
        progress("resetting the attacker's view")
        attacker = await reset_attacker_view(self.endpoints["attacker"])
        self.files.record_event("reset", {"attacker": attacker, "bank_restarted": list(BANK_DATA)})
        return image

    async def rug_pull(self, progress: Progress) -> ActImage:
        await self._defence(False, progress)
        return await self._converter(RUG_PULL_BUILD, progress, "upgrade-banking-app: real-rugpull")

    async def defence_on(self, progress: Progress) -> ActImage:
        image = await self._converter(RUG_PULL_BUILD, progress, "upgrade-banking-app: real-rugpull")
        await self._defence(True, progress)
        return image

    # -- receipts ----------------------------------------------------------------
    async def ask(self, prompt: str, agent: str = SUPPORT_BOT) -> AskResult:
        return await ask(prompt, chatbot=self.endpoints["chatbot"], agent=agent)

    def exfil_total(self) -> int:
        response = httpx.get(f"{self.endpoints['attacker']}/api/count", trust_env=False, timeout=10)
        response.raise_for_status()
        return int(response.json()["total"])

    def collect(self) -> None:
        """Mirror what the cluster logged since the last collection into the evidence chain."""
        Collector(self.kubectl, self.files, self.endpoints).collect()

    def denies_since(self, started: float) -> list[Deny]:
        self.collect()
        return receipts.denies_since(self.files, started)

    def _snapshot_alerts(self) -> None:
        try:
            firing = observability.prometheus_alerts(self.endpoints["prometheus"])
        except observability.ObservabilityUnavailable:
            firing = []
        self._firing_before = {_key(a): _value(a) for a in firing if a.get("state") == "firing"}

    def _fired(self, started: float) -> list[dict[str, Any]]:
        since = datetime.fromtimestamp(started, UTC)
        mailed = {
            observability.alertname_of(m.get("Subject")): m.get("Created")
            for m in observability.mailpit_messages(self.endpoints["mailpit"])
        }
        found = []
        for alert in observability.prometheus_alerts(self.endpoints["prometheus"]):
            if alert.get("state") != "firing":
                continue
            active, before = _moment(alert.get("activeAt")), self._firing_before.get(_key(alert))
            if before is not None and (active is None or active < since) and _value(alert) <= before:
                continue  # firing before this act began, and nothing new since: not this act's alert
            name = str(alert["labels"].get("alertname"))
            found.append(
                {"alertname": name, "state": "firing", "labels": alert["labels"],
                 "annotations": alert.get("annotations") or {}, "notified_at": mailed.get(name)}
            )  # fmt: skip
        return found

    async def alerts_since(
        self, started: float, expected: tuple[str, ...], progress: Progress
    ) -> list[Alert]:
        found = await asyncio.to_thread(self._fired, started)
        if expected:
            progress(f"waiting for alerts (Prometheus, then the mail sink): {', '.join(expected)}")
            deadline = time.monotonic() + ALERT_WAIT_SECONDS
            while time.monotonic() < deadline:
                if set(expected) <= {a["alertname"] for a in found if a["notified_at"]}:
                    break
                await self.sleep(5.0)
                found = await asyncio.to_thread(self._fired, started)
        self.files.record_event("alerts-read", {"alerts": [a["alertname"] for a in found]})
        return [Alert.of(a) for a in found]

    def evidence_summary(self) -> EvidenceSummary:
        self.collect()
        return receipts.evidence_summary(self.files)


def _key(alert: dict[str, Any]) -> str:
    return json.dumps(alert.get("labels") or {}, sort_keys=True)


def _value(alert: dict[str, Any]) -> float:
    """The alert expression's value (for the rules here, how many attempts in the window)."""
    try:
        return float(alert.get("value", 0))
    except (TypeError, ValueError):
        return 0.0


def _moment(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
