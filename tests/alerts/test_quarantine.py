"""Who an alert proposes to quarantine: the source workload, never mesh infrastructure."""

from __future__ import annotations

from tests.alerts.helpers import CONVERTER
from trustusbank.alerts.evaluator import Alert
from trustusbank.alerts.mail import compose, denied_by
from trustusbank.alerts.notifier import Notification
from trustusbank.alerts.quarantine import assess

WAYPOINT = "spiffe://cluster.local/ns/trustusbank-platform/sa/trustusbank-agentgw"
ZTUNNEL = "spiffe://cluster.local/ns/istio-system/sa/ztunnel"


def test_the_source_workload_is_proposed_and_infrastructure_never() -> None:
    workload = assess({"source_principal": CONVERTER})
    assert workload.proposal is not None
    assert workload.proposal.uri == CONVERTER
    for principal in (WAYPOINT, ZTUNNEL, WAYPOINT.removeprefix("spiffe://")):
        judged = assess({"source_principal": principal})
        assert judged.identity is not None
        assert judged.infrastructure is not None
        assert judged.proposal is None
    assert assess({"source_principal": "unknown"}).proposal is None


def test_the_denying_policy_is_named_and_never_none() -> None:
    assert denied_by("IstioAuthZDeny", {"policy": "ns/deny-it"}) == "AuthorizationPolicy ns/deny-it"
    assert denied_by("KagentAccessPolicyDeny", {"policy": "ns/callers"}) == "AccessPolicy ns/callers"
    unnamed = {"reason": "allow policies exist, but none allowed"}  # no policy label: none denied by name
    assert denied_by("IstioAuthZDeny", unnamed) == "allow policies exist, but none allowed"
    assert "KagentAccessPolicyDeny" in denied_by("KagentAccessPolicyDeny", {"policy": ""})
    assert "BankToAttackerAttempt" in denied_by("BankToAttackerAttempt", {})


def test_a_waypoint_mail_has_no_quarantine_command() -> None:
    offender = "trustusbank-platform-trustusbank-agentgw"
    labels = (
        ("alertname", "IstioAuthZDeny"),
        ("offender", offender),
        ("reason", "allow policies exist, but none allowed"),
        ("source_principal", WAYPOINT),
    )
    command = f"trustusbank apply -f quarantine-{offender}.yaml"
    annotations = {
        "summary": f"{WAYPOINT} refused at a/b: allow policies exist, but none allowed",
        "description": f"ztunnel refused it. To quarantine it: {command}",
        "quarantine": command,
    }
    alert = Alert(labels, annotations, 1.0, 0.0, state="firing", fired_at=0.0)
    body = compose(Notification((), [alert], set(), "first"), None).get_content()
    assert "Denied by: allow policies exist, but none allowed" in body
    assert "quarantine-" not in body
    assert "No quarantine proposed" in body
