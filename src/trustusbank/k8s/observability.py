"""The observability stack's HTTP APIs the story reads on a cluster: Prometheus's alerts and mailpit's inbox.

Both reached through the write-up's port-forwards (18002 Prometheus, 18012 mailpit). The
shapes are the documented ones: Prometheus `GET /api/v1/alerts` (`data.alerts[]` with
`labels`, `annotations`, `state`, `activeAt`), mailpit `GET /api/v1/messages`
(`messages[]` with `ID`, `Subject`, `Created`). Alertmanager's default e-mail subject names the
alert: `[FIRING:1] BankToAttackerAttempt (…)`.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from trustusbank.errors import UnavailableError

SUBJECT = re.compile(r"\[(?:FIRING|RESOLVED)(?::\d+)?\]\s+(?P<alertname>[A-Za-z_:][\w:]*)")


class ObservabilityUnavailable(UnavailableError, RuntimeError):
    """Prometheus or mailpit did not answer, or answered something that is not its API."""


def _get(url: str, params: dict[str, str] | None = None) -> Any:
    try:
        response = httpx.get(url, params=params, trust_env=False, timeout=10)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ObservabilityUnavailable(f"{url}: {exc}") from exc


def prometheus_alerts(base: str) -> list[dict[str, Any]]:
    """Every alert Prometheus holds now (pending and firing), as its API gives them."""
    body = _get(f"{base}/api/v1/alerts")
    alerts = body.get("data", {}).get("alerts") if isinstance(body, dict) else None
    if body.get("status") != "success" or not isinstance(alerts, list):
        raise ObservabilityUnavailable(f"{base}/api/v1/alerts: not a Prometheus alerts answer")
    return [a for a in alerts if isinstance(a, dict) and isinstance(a.get("labels"), dict)]


def mailpit_messages(base: str, limit: int = 200) -> list[dict[str, Any]]:
    """The newest messages in the mail sink (id, subject, time)."""
    body = _get(f"{base}/api/v1/messages", {"limit": str(limit)})
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        raise ObservabilityUnavailable(f"{base}/api/v1/messages: not a mailpit answer")
    return [m for m in messages if isinstance(m, dict) and "ID" in m]


def alertname_of(subject: object) -> str | None:
    """The alert an Alertmanager notification is about, from its subject."""
    found = SUBJECT.search(subject) if isinstance(subject, str) else None
    return found["alertname"] if found else None
