"""The SOC's e-mail for one notification: what fired, who did it, where, how often, and what to do.

Plain text, one section per alert of the group, then the quarantine command and the
policy file it applies. Machine-readable headers (`X-Alertname`, `X-Offender`,
`X-Alert-Fingerprints`) let the inbox and the demo find a mail without parsing prose.

Each alert names the policy that denied it or, when no policy denied by name (the
destination has ALLOW policies and none allowed the source), the reason the counter
carries: ztunnel's own words, never "denied by none".
When the source identity is mesh infrastructure (a waypoint, a node proxy), no
quarantine is proposed, and the mail says why.
"""

from __future__ import annotations

import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from trustusbank.alerts.notifier import Notification
from trustusbank.alerts.quarantine import Assessment, assess

SENDER = "trustusbank alerts <alerts@trustusbank.local>"
RECIPIENT = "SOC <soc@trustusbank.local>"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _destination(labels: dict[str, str]) -> str:
    if "destination_workload" in labels:
        return f"{labels.get('destination_workload_namespace', '?')}/{labels['destination_workload']}"
    if "agent" in labels:
        return f"{labels.get('namespace', '?')}/{labels['agent']} (agent)"
    return "-"


def denied_by(alert_name: str, labels: dict[str, str]) -> str:
    """The policy that denied, or, when the counter names none, the reason it carries."""
    policy, reason = labels.get("policy", ""), labels.get("reason", "")
    if policy and alert_name == "KagentAccessPolicyDeny":
        return f"AccessPolicy {policy}" + (f" ({reason})" if reason else "")
    if policy:
        return f"AuthorizationPolicy {policy}"
    if reason:
        return reason
    return f"alert rule {alert_name} (the metric names no policy)"


def _without_command(description: str, command: str | None) -> str:
    """The description without its quarantine sentence (for an offender no quarantine is proposed for)."""
    target = command.split()[-1] if command else "quarantine-"
    kept = [s for s in description.split(". ") if target not in s]
    return ". ".join(kept).rstrip(".") + "." if kept else ""


def _subject(labels: dict[str, str]) -> str:
    """What an alert with no caller names instead (the MCP guard's drift: a backend and its tool)."""
    named = [f"{key} {labels[key]}" for key in ("backend", "tool") if labels.get(key)]
    return ", ".join(named) or "an unverified peer"


def _count(value: float) -> str:
    whole = round(value)
    if abs(value - whole) < 1e-9:
        return f"{whole}"
    return f"{value:.2f} (extrapolated over the window)"


def compose(
    notification: Notification, quarantine_file: Path | None, assessment: Assessment | None = None
) -> EmailMessage:
    alerts = sorted(notification.alerts, key=lambda a: (a.fired_at or 0, a.fingerprint))
    first = alerts[0]
    labels = dict(first.labels)
    judged = assessment if assessment is not None else assess(labels)
    identity = judged.identity
    proposal = judged.proposal
    principal = labels.get("source_principal")
    who = identity.uri if identity else principal or _subject(labels)
    severity = labels.get("severity", "none")
    command = first.annotations.get("quarantine")
    role = f" ({judged.infrastructure}: mesh infrastructure)" if judged.infrastructure else ""
    lines = [
        f"{first.name}: {len(alerts)} alert(s) firing, severity {severity}",
        f"Offending {'SPIFFE ID' if identity or principal else 'party'}: {who}{role}",
        f"Denied by: {denied_by(first.name, labels)}",
        f"Group: {', '.join(f'{k}={v}' for k, v in notification.key)} ({notification.reason})",
        "",
    ]
    for index, alert in enumerate(alerts, 1):
        own = dict(alert.labels)
        marker = " (new)" if alert.fingerprint in notification.new else ""
        summary = alert.annotations.get("summary", alert.name)
        lines += [
            f"[{index}] {summary}{marker}",
            f"    Alert:       {alert.name}",
            f"    Identity:    {own.get('source_principal', '-')}",
            f"    Destination: {_destination(own)}",
            f"    Denied by:   {denied_by(alert.name, own)}",
            f"    Count:       {_count(alert.value)} in the rule's window",
            f"    Firing since {_when(alert.fired_at)} (active since {_when(alert.active_at)})",
            f"    Labels:      {', '.join(f'{k}={v}' for k, v in alert.labels)}",
        ]
        description = alert.annotations.get("description")
        if description is not None and proposal is None:
            description = _without_command(description, alert.annotations.get("quarantine"))
        if description:
            lines.append(f"    Description: {description}")
        lines.append("")
    if proposal is not None and quarantine_file is not None:
        lines += [
            "Quarantine (DENY everything from this identity mesh-wide, and everything into its pods):",
            f"    cd {quarantine_file.parent} && {command or 'trustusbank apply -f ' + quarantine_file.name}",
            f"    on a cluster: kubectl apply -f {quarantine_file.name}",
            f"    lift it with: trustusbank delete -f {quarantine_file}",
            "",
            f"--- {quarantine_file.name} ---",
            quarantine_file.read_text(),
        ]
    elif judged.infrastructure is not None:
        lines += [
            f"No quarantine proposed: the only offender named, {who}, is {judged.infrastructure},"
            " mesh infrastructure that carries other workloads' traffic; quarantining it would cut"
            " them all off. The workload that sent the request through it is in the waypoint's"
            " access log and agentgateway_policy_denials_total{source_principal}.",
            "",
        ]
    elif principal is None:
        lines += [f"No quarantine proposed: the alert names no workload identity to cut off ({who}).", ""]
    else:
        lines += [f"No quarantine proposed: {who!r} is not a SPIFFE identity this mesh issues.", ""]

    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = RECIPIENT
    message["Subject"] = f"[FIRING:{len(alerts)}] {first.name} {who}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="trustusbank.local")
    message["X-Alertname"] = first.name
    message["X-Offender"] = who
    message["X-Quarantine"] = quarantine_file.name if proposal and quarantine_file else "none"
    message["X-Severity"] = severity
    message["X-Alert-Fingerprints"] = " ".join(a.fingerprint for a in alerts)
    message.set_content("\n".join(lines))
    return message
