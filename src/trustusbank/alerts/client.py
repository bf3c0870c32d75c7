"""What the demo and the tests call: the running evaluator's alerts, the SOC inbox's mail, the alert log.

The pods are reached the way `kubectl port-forward` reaches them, straight at the
pod's own address from the topology, never through the mesh; so this works with
port-forwards disabled. Every call is synchronous and bounded by a timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import httpx

from trustusbank.alerts.service import LOG_NAME
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Topology
from trustusbank.errors import UnavailableError

NAMESPACE = "trustusbank-observability"
EVALUATOR = "alert-evaluator"
INBOX = "soc-inbox"
HTTP_PORT = 8080
HTTP_TIMEOUT = 5.0


class Unavailable(UnavailableError, RuntimeError):
    """The evaluator or the inbox is not running, or did not answer."""


def pod_url(files: ClusterFiles, deployment: str, namespace: str = NAMESPACE, port: int = HTTP_PORT) -> str:
    """`http://<app address>:<port>` of the first pod of a Deployment, from the running cluster's topology."""
    if not files.topology.exists():
        raise Unavailable(f"no cluster is running in {files.state} (no topology.json)")
    topology = Topology.load(files.topology)
    pod = next((p for p in topology.pods if (p.namespace, p.deployment) == (namespace, deployment)), None)
    if pod is None:
        raise Unavailable(f"no {namespace}/{deployment} pod in this cluster")
    return f"http://{pod.app_ip}:{port}"


def alerts_url(files: ClusterFiles) -> str:
    return pod_url(files, EVALUATOR)


def inbox_url(files: ClusterFiles) -> str:
    return pod_url(files, INBOX)


def _get(url: str, params: dict[str, Any], timeout: float) -> Any:
    try:
        response = httpx.get(url, params=params, timeout=timeout, trust_env=False)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable(f"{url}: {exc}") from exc


async def _aget(url: str, params: dict[str, Any]) -> Any:
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=HTTP_TIMEOUT) as client:
            response = await client.get(url, params=params)
            response.raise_for_status()
            return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable(f"{url}: {exc}") from exc


def _alert_params(since: float | None) -> dict[str, Any]:
    return {"since": since} if since is not None else {}


def _mail_params(since: float | None, everything: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": 1000}
    if since is not None:
        params["since"] = since
    if everything:
        params["all"] = "1"
    return params


def fired_alerts(url: str, since: float | None = None, timeout: float = 5) -> list[dict[str, Any]]:
    """Alerts of the evaluator at `url` (pending and firing, then recently resolved); with `since`, only
    those that fired at or after it. Each: alertname, state, labels, annotations, value, active_at,
    fired_at, resolved_at, notified_at, fingerprint."""
    return list(_get(f"{url}/api/alerts", _alert_params(since), timeout)["alerts"])


async def fired_alerts_async(url: str, since: float | None = None) -> list[dict[str, Any]]:
    """`fired_alerts` for async callers (5 s timeout per request)."""
    return list((await _aget(f"{url}/api/alerts", _alert_params(since)))["alerts"])


def inbox_messages(
    url: str, since: float | None = None, everything: bool = False, timeout: float = 5
) -> list[dict[str, Any]]:
    """Mail in the SOC inbox at `url`, newest first (since the last reset unless `everything`); with
    `since`, only mail received at or after it. Each: id, received_at, subject, alertname, offender,
    mail_from, rcpt_to, peer, peer_identity, body."""
    return list(_get(f"{url}/api/messages", _mail_params(since, everything), timeout)["messages"])


async def inbox_messages_async(
    url: str, since: float | None = None, everything: bool = False
) -> list[dict[str, Any]]:
    """`inbox_messages` for async callers (5 s timeout per request)."""
    return list((await _aget(f"{url}/api/messages", _mail_params(since, everything)))["messages"])


def _wait(fetch: Any, names: Iterable[str], key: str, timeout: float) -> list[dict[str, Any]]:
    wanted = set(names)
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while True:
        found = fetch()
        if wanted <= {str(item.get(key)) for item in found}:
            return found
        if time.monotonic() >= deadline:
            missing = wanted - {str(item.get(key)) for item in found}
            raise TimeoutError(f"after {timeout:g}s still missing: {', '.join(sorted(missing))}")
        time.sleep(0.2)


def wait_for_alerts(
    url: str, names: Iterable[str], since: float, timeout: float = 10
) -> list[dict[str, Any]]:
    """Poll until every alert name has fired since `since`; TimeoutError names the missing ones."""
    return _wait(lambda: fired_alerts(url, since), names, "alertname", timeout)


def wait_for_mail(url: str, names: Iterable[str], since: float, timeout: float = 10) -> list[dict[str, Any]]:
    """Poll until the inbox holds a mail for every alert name received since `since`."""
    return _wait(lambda: inbox_messages(url, since), names, "alertname", timeout)


def alert_log(
    files: ClusterFiles, since: float | None = None, event: str | None = None
) -> list[dict[str, Any]]:
    """The evaluator's record, `cluster/logs/alerts.jsonl` (firing, resolved, notified, delivery-failed),
    optionally only entries at or after `since` and of one `event` kind; readable with no pod running."""
    entries = [
        json.loads(line)
        for path in files.outputs("logs", LOG_NAME)
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return [
        e
        for e in entries
        if (since is None or float(e.get("ts", 0)) >= since) and (event is None or e.get("event") == event)
    ]
