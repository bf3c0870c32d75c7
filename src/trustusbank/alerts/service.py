"""The alert evaluator's loop: scrape, evaluate the PrometheusRules, notify the SOC, keep a record.

Every `interval` seconds (the rule group's, or `TRUSTUSBANK_ALERTS_INTERVAL`):
scrape the targets, evaluate every rule at that instant, append each state change
to `alerts.jsonl`, and mail each notification the grouping makes due, with the
offender's quarantine file written beside it. One step is one function (`step`),
so tests drive it with their own clock and servers.

The samples are kept for `history` seconds (or longer, if a rule reads further back), so the
Prometheus API's range queries (`prometheus_api.py`) can draw the last half hour, a whole
demo, from the very series the rules read: at the embedded 1 s interval that is 1,800 samples
a series, and only the rules' input series (tens) are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustusbank.alerts import mail, quarantine, smtp_client
from trustusbank.alerts.evaluator import MAX_RESOLVED, Alert, RuleEvaluator, Transition
from trustusbank.alerts.notifier import Notification, Notifier, NotifyPolicy
from trustusbank.alerts.scrape import Scraper
from trustusbank.alerts.targets import Target
from trustusbank.cluster.topology import Topology
from trustusbank.env import ALERTS_INTERVAL, ALERTS_SMTP, SettingError
from trustusbank.manifests.prometheus import DEFAULT_INTERVAL, RuleGroup
from trustusbank.promql.ast import lookbehind, metric_names
from trustusbank.promql.durations import parse_duration
from trustusbank.promql.engine import LOOKBACK_DELTA
from trustusbank.promql.series import SeriesStore
from trustusbank.telemetry.jsonlog import JsonLinesLog

log = logging.getLogger(__name__)

LOG_NAME = "alerts.jsonl"
HISTORY = 30 * 60.0


def seconds(raw: str) -> float:
    """`1.5` or `1s500ms`, as a number of seconds."""
    try:
        return float(raw)
    except ValueError:
        return parse_duration(raw)


def smtp_address(raw: str | None) -> tuple[str, int] | None:
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        raise SettingError(f"{ALERTS_SMTP.name} must be host:port, got {raw!r}")
    return host, int(port)


@dataclass
class AlertService:
    groups_source: Callable[[], list[RuleGroup]]
    targets_source: Callable[[], list[Target]]
    log_path: Path
    quarantine_dir: Path
    smtp: tuple[str, int] | None = None
    proxy: tuple[str, int] | None = None
    interval: float | None = None
    policy: NotifyPolicy = field(default_factory=NotifyPolicy)
    topology_source: Callable[[], Topology | None] = lambda: None
    scrape_timeout: float = 2.0
    history: float = HISTORY
    max_resolved: int = MAX_RESOLVED

    def __post_init__(self) -> None:
        self.store = SeriesStore()
        self.evaluator = RuleEvaluator([], self.store, max_resolved=self.max_resolved)
        self.scraper = Scraper(self.store, set(), timeout=self.scrape_timeout)
        self.notifier = Notifier(self.policy)
        self.journal = JsonLinesLog(self.log_path, component="alert-evaluator")
        self.evaluations = 0
        self.evaluated_at: float | None = None
        self.notified_at: dict[str, float] = {}
        self.notifications = 0
        self.last_error: str | None = None

    @property
    def period(self) -> float:
        if self.interval is not None:
            return self.interval
        intervals = [g.interval for g in self.evaluator.groups if g.interval]
        return min(intervals, default=DEFAULT_INTERVAL)

    def _load_rules(self) -> None:
        try:
            groups = self.groups_source()
        except Exception as exc:  # keep the last good rules; say why
            log.exception("alert rules did not load; keeping the previous ones")
            self.last_error = f"rules: {exc}"
            return
        if groups is self.evaluator.groups:
            return
        kept = {f"{g.source}/{g.name}/{r.alert}" for g in groups for r in g.rules if r.alert}
        self.evaluator.groups = groups
        self.evaluator.active = {k: a for k, a in self.evaluator.active.items() if k[0] in kept}
        self.scraper.wanted = {name for g in groups for r in g.rules for name in metric_names(r.expr)}

    async def step(self, now: float | None = None) -> None:
        """One cycle. Samples are stamped as each answer arrives and rules are evaluated once every
        scrape has finished (`now`, if given, is used for both), so neither an alert's `fired_at`
        nor its `last_event_at` is earlier than the event it reports: "alerts since I did X" has
        no race with a cycle in flight."""
        self._load_rules()
        try:
            targets = self.targets_source()
        except Exception as exc:
            log.exception("scrape targets unavailable")
            self.last_error, targets = f"targets: {exc}", []
        await self.scraper.scrape(targets, now)
        at = time.time() if now is None else now
        for change in self.evaluator.evaluate(at):
            self._journal_transition(change, at)
        for notification in self.notifier.due(at, self.evaluator.firing()):
            await self._notify(notification, at)
        self.evaluations += 1
        self.evaluated_at = at
        reach = max((lookbehind(r.expr) for g in self.evaluator.groups for r in g.rules), default=0.0)
        self.store.prune(at - max(reach + LOOKBACK_DELTA + 60, self.history))

    def _journal_transition(self, change: Transition, at: float) -> None:
        alert = change.alert
        level = "warn" if change.state == "firing" else "info"
        fields = {"event": change.state, "ts": at, **alert.to_dict()}
        self.journal.write(level, "alert", f"{alert.name} {change.state}", fields)

    async def _notify(self, notification: Notification, at: float) -> None:
        first = notification.alerts[0]
        topology = self.topology_source()
        judged = quarantine.assess(dict(first.labels), topology)
        identity = judged.identity
        path = None
        if judged.proposal is not None:  # never the waypoint or a node proxy
            reason = f"{first.name} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(at))}"
            path = quarantine.write(self.quarantine_dir, judged.proposal, topology, reason)
        message = mail.compose(notification, path, judged)
        fields: dict[str, Any] = {
            "ts": at,
            "alertname": first.name,
            "offender": identity.uri if identity else None,
            "infrastructure": judged.infrastructure,
            "group": notification.group_labels,
            "reason": notification.reason,
            "fingerprints": [a.fingerprint for a in notification.alerts],
            "new": sorted(notification.new),
            "subject": message["Subject"],
            "smtp": f"{self.smtp[0]}:{self.smtp[1]}" if self.smtp else None,
            "quarantine_file": str(path) if path else None,
        }
        if self.smtp is None:
            self.journal.write(
                "warn", "notify", "no SMTP server configured", {"event": "undelivered", **fields}
            )
            self.notifier.sent(notification, at)
            return
        host, port = self.smtp
        try:
            await asyncio.to_thread(smtp_client.send, message, host, port, self.proxy)
        except smtp_client.DeliveryError as exc:
            self.last_error = str(exc)
            self.journal.write(
                "error",
                "notify",
                "delivery failed",
                {"event": "delivery-failed", "error": str(exc), **fields},
            )
            return
        self.notifier.sent(notification, at)
        self.notifications += 1
        for alert in notification.alerts:
            self.notified_at[alert.fingerprint] = at
        self.journal.write("warn", "notify", f"mailed {first.name}", {"event": "notified", **fields})

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await self.step()
                except Exception as exc:  # one bad cycle must not end alerting
                    log.exception("evaluation cycle failed")
                    self.last_error = f"cycle: {exc}"
                wait = max(0.0, self.period - (time.monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            await self.scraper.close()

    def alert_dict(self, alert: Alert) -> dict[str, Any]:
        return {
            **alert.to_dict(),
            "last_event_at": self.evaluator.last_event_at(alert),
            "notified_at": self.notified_at.get(alert.fingerprint),
        }

    def snapshot(self, since: float | None = None) -> dict[str, Any]:
        """Every alert; with `since`, those that fired at or after it, or that were already firing and
        whose evidence grew since (a repeat of the same event keeps one alert, as in Prometheus)."""
        alerts = [self.alert_dict(a) for a in self.evaluator.alerts()]
        if since is not None:
            alerts = [
                a
                for a in alerts
                if a["fired_at"] is not None
                and (
                    a["fired_at"] >= since or (a["last_event_at"] is not None and a["last_event_at"] >= since)
                )
            ]
        return {
            "alerts": alerts,
            "evaluated_at": self.evaluated_at,
            "evaluations": self.evaluations,
            "interval": self.period,
            "rules": [r.name for g in self.evaluator.groups for r in g.rules],
            "rule_errors": dict(self.evaluator.errors),
            "resolved_dropped": self.evaluator.resolved_dropped,
            "targets": [h.to_dict() for h in self.scraper.health.values()],
            "notifications": self.notifications,
            "smtp": f"{self.smtp[0]}:{self.smtp[1]}" if self.smtp else None,
            "last_error": self.last_error,
        }


def interval_from_env() -> float | None:
    return ALERTS_INTERVAL.read_as(lambda raw: None if raw is None else seconds(raw))
