"""Alertmanager's grouping and deduplication, for the evaluator's firing alerts.

Alerts are grouped by `group_by` labels (default: the alert name and the offending
identity). A group is notified `group_wait` after it first fires; again only when
an alert joins it that was not in the last notification (no sooner than
`group_interval` after it), or when `repeat_interval` has passed. The same label
set is therefore never mailed twice within the repeat interval, however often the
rule evaluates. A delivery that fails is not marked as notified, so it is retried
at the next evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trustusbank.alerts.evaluator import Alert
from trustusbank.env import (
    ALERTS_GROUP_BY,
    ALERTS_GROUP_INTERVAL,
    ALERTS_GROUP_WAIT,
    ALERTS_REPEAT_INTERVAL,
    Setting,
)
from trustusbank.promql.durations import parse_duration


@dataclass(frozen=True)
class NotifyPolicy:
    group_by: tuple[str, ...] = ("alertname", "offender")
    group_wait: float = 0.0
    group_interval: float = 1.0
    repeat_interval: float = 4 * 3600.0

    @classmethod
    def from_env(cls) -> NotifyPolicy:
        default = cls()

        def seconds(setting: Setting[str | None], fallback: float) -> float:
            return setting.read_as(lambda raw: fallback if raw is None else parse_duration(raw))

        group_by = ALERTS_GROUP_BY.read()
        return cls(
            group_by=default.group_by if group_by is None else group_by,
            group_wait=seconds(ALERTS_GROUP_WAIT, default.group_wait),
            group_interval=seconds(ALERTS_GROUP_INTERVAL, default.group_interval),
            repeat_interval=seconds(ALERTS_REPEAT_INTERVAL, default.repeat_interval),
        )


GroupKey = tuple[tuple[str, str], ...]


@dataclass
class Notification:
    key: GroupKey
    alerts: list[Alert]
    new: set[str]  # fingerprints not in the group's previous notification
    reason: str  # first, new-alerts, repeat

    @property
    def group_labels(self) -> dict[str, str]:
        return dict(self.key)


@dataclass
class _Group:
    first_seen: float
    last_notified: float | None = None
    notified: set[str] = field(default_factory=set)


class Notifier:
    def __init__(self, policy: NotifyPolicy) -> None:
        self.policy = policy
        self._groups: dict[GroupKey, _Group] = {}

    def group_key(self, alert: Alert) -> GroupKey:
        labels = dict(alert.labels)
        return tuple((name, labels.get(name, "")) for name in self.policy.group_by)

    def due(self, now: float, firing: list[Alert]) -> list[Notification]:
        """The notifications to send now for these firing alerts (call `sent` for each one delivered)."""
        by_group: dict[GroupKey, list[Alert]] = {}
        for alert in firing:
            by_group.setdefault(self.group_key(alert), []).append(alert)
        for key in set(self._groups) - set(by_group):
            del self._groups[key]  # nothing firing: a later alert starts a fresh group
        out = []
        for key, alerts in by_group.items():
            group = self._groups.setdefault(key, _Group(first_seen=now))
            current = {a.fingerprint for a in alerts}
            new = current - group.notified
            if group.last_notified is None:
                if now - group.first_seen >= self.policy.group_wait:
                    out.append(Notification(key, alerts, new, "first"))
            elif new and now - group.last_notified >= self.policy.group_interval:
                out.append(Notification(key, alerts, new, "new-alerts"))
            elif now - group.last_notified >= self.policy.repeat_interval:
                out.append(Notification(key, alerts, new, "repeat"))
        return out

    def sent(self, notification: Notification, now: float) -> None:
        group = self._groups.get(notification.key)
        if group is not None:
            group.last_notified = now
            group.notified = {a.fingerprint for a in notification.alerts}
