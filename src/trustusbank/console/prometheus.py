"""A client for the part of Prometheus' HTTP API the dashboard reads: `query` and `query_range`.

In the embedded cluster the alert evaluator answers them (alerts/prometheus_api.py) at its
pod's app address, which the console reaches as a port-forward does: straight into the pod.
Queries are POSTed as a form, as Grafana sends them (a long PromQL query does not fit every
URL). An answer that is not Prometheus' envelope, or says `error`, is an error with its
message, never an empty panel: an empty result and an unanswered query must look different.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import httpx

from trustusbank.cluster.topology import Topology
from trustusbank.errors import UnavailableError

EVALUATOR = ("trustusbank-observability", "alert-evaluator")  # deploy/10-observability
TIMEOUT = 30.0  # above the evaluator's own 20 s limit on a query, so its 503 arrives first


class PrometheusError(UnavailableError, RuntimeError):
    """The API did not answer, or answered an error (bad_data, execution, timeout)."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (epoch seconds, value); an instant query has one


@dataclass(frozen=True)
class Answer:
    series: list[Series]
    warnings: list[str] = field(default_factory=list)


def evaluator_url(topology: Topology) -> str:
    """The alert evaluator's API, at its pod's app address (where a port-forward reaches it)."""
    namespace, deployment = EVALUATOR
    for pod in topology.pods:
        if (pod.namespace, pod.deployment) == (namespace, deployment) and pod.ports:
            port = next((p for p in pod.ports if p.name == "http"), pod.ports[0])
            return f"http://{pod.app_ip}:{port.port}"
    raise PrometheusError(f"the topology has no {namespace}/{deployment} pod: nothing answers PromQL")


def _value(raw: Any) -> float:
    """A sample value as Prometheus writes it (a string: "1", "NaN", "+Inf")."""
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise PrometheusError(f"a sample value is not a number: {raw!r}") from None


def _series(data: Any) -> list[Series]:
    if not isinstance(data, dict):
        raise PrometheusError("the answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return [Series({}, [(float(result[0]), _value(result[1]))])]
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        raise PrometheusError(f"a {kind!r} result cannot be drawn")
    found = []
    for item in result:
        labels = item.get("metric") if isinstance(item, dict) else None
        if not isinstance(labels, dict):
            raise PrometheusError("a series has no labels")
        pairs = item.get("values") if kind == "matrix" else [item.get("value")]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise PrometheusError("a series has malformed samples")
        points = [(float(t), _value(v)) for t, v in pairs]
        found.append(Series({str(k): str(v) for k, v in labels.items()}, points))
    return found


class Prometheus:
    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self.client = client

    async def _ask(self, path: str, form: dict[str, str]) -> Answer:
        try:
            response = await self.client.post(f"{self.url}{path}", data=form, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{self.url} did not answer: {type(exc).__name__}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            status = response.status_code
            raise PrometheusError(f"{self.url}{path} answered HTTP {status}, not JSON") from None
        if not isinstance(body, dict):
            raise PrometheusError(f"{self.url}{path} answered something other than Prometheus' envelope")
        if body.get("status") != "success":
            kind = body.get("errorType", f"HTTP {response.status_code}")
            raise PrometheusError(f"{kind}: {body.get('error', 'no error message')}")
        warnings = [str(w) for w in body.get("warnings") or []]
        return Answer(_series(body.get("data")), warnings)

    async def instant(self, query: str, at: float) -> Answer:
        return await self._ask("/api/v1/query", {"query": query, "time": _number(at)})

    async def range(self, query: str, start: float, end: float, step: float) -> Answer:
        form = {"query": query, "start": _number(start), "end": _number(end), "step": _number(step)}
        return await self._ask("/api/v1/query_range", form)


def _number(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else repr(value)
