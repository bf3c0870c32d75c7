"""The SOC's e-mail for one notification: what fired, who did it, where, how often, and what to do.

Plain text, one section per alert of the group, then the quarantine command and the
policy file it applies. Machine-readable headers (`X-Alertname`, `X-Offender`,
`X-Alert-Fingerprints`) let the inbox and the demo find a mail without parsing prose.
"""

from __future__ import annotations

import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from trustusbank.alerts.notifier import Notification
from trustusbank.alerts.quarantine import offender

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


def _count(value: float) -> str:
    whole = round(value)
    if abs(value - whole) < 1e-9:
        return f"{whole}"
    return f"{value:.2f} (extrapolated over the window)"


def compose(notification: Notification, quarantine_file: Path | None) -> EmailMessage:
    alerts = sorted(notification.alerts, key=lambda a: (a.fired_at or 0, a.fingerprint))
    first = alerts[0]
    labels = dict(first.labels)
    identity = offender(labels)
    who = identity.uri if identity else labels.get("source_principal", "an unverified peer")
    severity = labels.get("severity", "none")
    lines = [
        f"{first.name}: {len(alerts)} alert(s) firing, severity {severity}",
        f"Offending SPIFFE ID: {who}",
        f"Group: {', '.join(f'{k}={v}' for k, v in notification.key)} ({notification.reason})",
        "",
    ]
    for index, alert in enumerate(alerts, 1):
        own = dict(alert.labels)
        marker = " (new)" if alert.fingerprint in notification.new else ""
        lines += [
            f"[{index}] {alert.annotations.get('summary', alert.name)}{marker}",
            f"    Alert:       {alert.name}",
            f"    Identity:    {own.get('source_principal', '-')}",
            f"    Destination: {_destination(own)}",
            f"    Count:       {_count(alert.value)} in the rule's window",
            f"    Firing since {_when(alert.fired_at)} (active since {_when(alert.active_at)})",
            f"    Labels:      {', '.join(f'{k}={v}' for k, v in alert.labels)}",
        ]
        if "description" in alert.annotations:
            lines.append(f"    Description: {alert.annotations['description']}")
        lines.append("")
    command = first.annotations.get("quarantine")
    if identity is not None and quarantine_file is not None:
        lines += [
            "Quarantine (DENY everything from this identity mesh-wide, and everything into its pods):",
            f"    cd {quarantine_file.parent} && {command or 'trustusbank apply -f ' + quarantine_file.name}",
            f"    on a cluster: kubectl apply -f {quarantine_file.name}",
            f"    lift it with: trustusbank delete -f {quarantine_file}",
            "",
            f"--- {quarantine_file.name} ---",
            quarantine_file.read_text(),
        ]
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
    message["X-Severity"] = severity
    message["X-Alert-Fingerprints"] = " ".join(a.fingerprint for a in alerts)
    message.set_content("\n".join(lines))
    return message
