"""Alertmanager-style grouping and dedupe: one mail per new alert in a group, never the same one twice."""

from __future__ import annotations

from trustusbank.alerts.evaluator import Alert
from trustusbank.alerts.notifier import Notifier, NotifyPolicy
from trustusbank.promql.series import labels_of

CONVERTER = "trustusbank-bank-vendors-currency-converter"


def alert(name: str, offender: str = CONVERTER, **labels: str) -> Alert:
    found = Alert(labels_of({"alertname": name, "offender": offender, **labels}), {}, 1.0, 0.0, "firing")
    found.fired_at = 0.0
    return found


def deliver_all(notifier: Notifier, now: float, firing: list[Alert]) -> list[tuple[str, str, int]]:
    out = []
    for notification in notifier.due(now, firing):
        notifier.sent(notification, now)
        out.append((notification.group_labels["alertname"], notification.reason, len(notification.alerts)))
    return out


def test_same_alerts_every_evaluation_are_mailed_once() -> None:
    notifier = Notifier(NotifyPolicy(group_wait=0, group_interval=1, repeat_interval=3600))
    firing = [alert("BankToAttackerAttempt", outcome="allowed")]
    assert deliver_all(notifier, 10, firing) == [("BankToAttackerAttempt", "first", 1)]
    for t in range(11, 100):
        assert deliver_all(notifier, t, firing) == []


def test_an_alert_joining_the_group_is_mailed_after_the_group_interval() -> None:
    """Act 2's allowed attempt, then Act 3's denied one: same group, a second mail with both."""
    notifier = Notifier(NotifyPolicy(group_wait=0, group_interval=5, repeat_interval=3600))
    allowed = alert("BankToAttackerAttempt", outcome="allowed")
    denied = alert("BankToAttackerAttempt", outcome="denied")
    assert deliver_all(notifier, 0, [allowed]) == [("BankToAttackerAttempt", "first", 1)]
    assert deliver_all(notifier, 2, [allowed, denied]) == []  # group_interval not yet over
    assert deliver_all(notifier, 5, [allowed, denied]) == [("BankToAttackerAttempt", "new-alerts", 2)]
    assert deliver_all(notifier, 6, [allowed, denied]) == []


def test_groups_are_separate_and_wait_and_repeat_apply() -> None:
    notifier = Notifier(NotifyPolicy(group_wait=2, group_interval=1, repeat_interval=60))
    deny = alert("IstioAuthZDeny", policy="external-attacker/deny-bank-to-attacker")
    other = alert("IstioAuthZDeny", offender="trustusbank-bank-frontend-chatbot")
    assert deliver_all(notifier, 0, [deny, other]) == []
    assert sorted(deliver_all(notifier, 2, [deny, other])) == [
        ("IstioAuthZDeny", "first", 1),
        ("IstioAuthZDeny", "first", 1),
    ]
    assert deliver_all(notifier, 61, [deny, other]) == []
    assert deliver_all(notifier, 62, [deny, other]) == [
        ("IstioAuthZDeny", "repeat", 1),
        ("IstioAuthZDeny", "repeat", 1),
    ]


def test_a_failed_delivery_is_retried_and_a_resolved_group_starts_afresh() -> None:
    notifier = Notifier(NotifyPolicy(group_wait=0, group_interval=1, repeat_interval=3600))
    firing = [alert("KagentAccessPolicyDeny", agent="support-bot")]
    assert len(notifier.due(0, firing)) == 1  # not marked sent: the mail did not go out
    assert deliver_all(notifier, 1, firing) == [("KagentAccessPolicyDeny", "first", 1)]
    assert deliver_all(notifier, 2, []) == []
    assert deliver_all(notifier, 3, firing) == [("KagentAccessPolicyDeny", "first", 1)]


def test_policy_from_env(monkeypatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_ALERTS_GROUP_BY", "alertname, source_principal")
    monkeypatch.setenv("TRUSTUSBANK_ALERTS_GROUP_INTERVAL", "30s")
    monkeypatch.setenv("TRUSTUSBANK_ALERTS_REPEAT_INTERVAL", "1h30m")
    policy = NotifyPolicy.from_env()
    assert policy.group_by == ("alertname", "source_principal")
    assert (policy.group_wait, policy.group_interval, policy.repeat_interval) == (0.0, 30.0, 5400.0)
