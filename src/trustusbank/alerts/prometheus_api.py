"""The part of Prometheus' HTTP API that tools and Grafana use, answered by the alert evaluator.

`/api/v1/query` and `/query_range` (GET, or POST with a form body, as Grafana sends them),
`/api/v1/alerts`, `/api/v1/rules` (`type=alert|record`) and `/api/v1/status/buildinfo`, in
Prometheus' envelope: `{"status": "success", "data": ...}`, or `{"status": "error",
"errorType": "bad_data" | "execution", "error": ...}` with HTTP 400 or 422. Everything comes
from the running evaluator's state (its series store, its rules and alerts); nothing here
evaluates rules a second time. Grafana's data source check asks the instant query `1+1` and
reads buildinfo (no `features`: a plain Prometheus).

Alerting comes first: a query is evaluated in a worker thread, one at a time, on a snapshot
of the store taken between two evaluation cycles (so the loop never waits for it, and it never
reads a series mid-append), and a range query gives up at its deadline (`timeout`, at most
`QUERY_TIMEOUT`) with Prometheus' 503 `timeout`; a dashboard over half an hour of
per-second samples costs seconds of CPU here.
"""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from trustusbank.alerts.evaluator import ALERTS_METRIC, Alert
from trustusbank.alerts.prometheus_format import BadParameter, go_e, parse_step, parse_time, rfc3339
from trustusbank.alerts.prometheus_query import (
    BadData,
    ExecutionError,
    QueryResult,
    QueryTimeout,
    instant,
    range_query,
)
from trustusbank.alerts.rule_states import GroupState, RuleState, rule_states
from trustusbank.alerts.service import AlertService
from trustusbank.promql.engine import Engine

FORM = "application/x-www-form-urlencoded"
NEVER = "0001-01-01T00:00:00Z"  # Go's zero time: what Prometheus says of a rule not yet evaluated
RULE_TYPES = {"alert": "alerting", "record": "recording"}
QUERY_TIMEOUT = 20.0  # Prometheus allows 2 min; this process has alerts to evaluate every second


def success(data: Any, warnings: list[str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = warnings
    return JSONResponse(body)


def error(kind: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"status": "error", "errorType": kind, "error": message}, status_code=status)


async def params(request: Request) -> dict[str, str]:
    """The URL's parameters, overridden by a POSTed form's (Go's `FormValue` order)."""
    found = dict(request.query_params)
    if request.method == "POST" and request.headers.get("content-type", "").split(";")[0].strip() == FORM:
        try:
            found.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadData(f"the form body does not parse: {exc}") from None
    return found


def _time(values: dict[str, str], name: str, default: float | None = None) -> float:
    raw = values.get(name, "")
    if raw == "" and default is not None:
        return default
    try:
        return parse_time(raw)
    except BadParameter as exc:
        raise BadData(f'invalid parameter "{name}": {exc}') from None


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state,
        "activeAt": rfc3339(alert.active_at),
        "value": go_e(alert.value),
    }


def rule_json(state: RuleState) -> dict[str, Any]:
    rule = state.rule
    body: dict[str, Any] = {"name": rule.name, "query": rule.expr_text.strip(), "labels": dict(rule.labels)}
    if state.kind == "alerting":
        body = {
            "state": state.state,
            **body,
            "duration": rule.for_seconds,
            "keepFiringFor": 0,
            "annotations": dict(rule.annotations),
            "alerts": [alert_json(a) for a in state.alerts],
        }
    body["health"] = state.health
    if state.last_error:
        body["lastError"] = state.last_error
    body["evaluationTime"] = state.evaluation_seconds
    body["lastEvaluation"] = rfc3339(state.last_evaluation) if state.last_evaluation else NEVER
    body["type"] = state.kind
    return body


def group_json(group: GroupState, kind: str | None) -> dict[str, Any]:
    return {
        "name": group.group.name,
        "file": group.group.source,
        "rules": [rule_json(r) for r in group.rules if kind is None or r.kind == kind],
        "interval": group.interval,
        "limit": 0,
        "evaluationTime": group.evaluation_seconds,
        "lastEvaluation": rfc3339(group.last_evaluation) if group.last_evaluation else NEVER,
    }


def kept_metrics(service: AlertService) -> set[str]:
    """What a query can find here: the metrics scraped for the rules, and what the rules write."""
    recorded = {r.record for g in service.evaluator.groups for r in g.rules if r.record}
    return set(service.scraper.wanted) | recorded | {ALERTS_METRIC}


def _build_info() -> dict[str, str]:
    try:
        ours = version("trustusbank")
    except PackageNotFoundError:
        ours = "unknown"
    return {
        "version": ours,
        "revision": "",
        "branch": "",
        "buildUser": "trustusbank alert evaluator",
        "buildDate": "",
        "goVersion": "",
    }


def _deadline(values: dict[str, str]) -> float:
    limit = QUERY_TIMEOUT
    if values.get("timeout"):
        try:
            limit = min(limit, parse_step(values["timeout"]))
        except BadParameter as exc:
            raise BadData(f'invalid parameter "timeout": {exc}') from None
    return time.monotonic() + limit


def _instant(engine: Engine, values: dict[str, str], kept: set[str]) -> QueryResult:
    at = _time(values, "time", default=time.time())
    return instant(engine, values.get("query", ""), at, kept)


def _range(engine: Engine, values: dict[str, str], kept: set[str], deadline: float) -> QueryResult:
    start, end = _time(values, "start"), _time(values, "end")
    try:
        step = parse_step(values.get("step", ""))
    except BadParameter as exc:
        raise BadData(f'invalid parameter "step": {exc}') from None
    return range_query(engine, values.get("query", ""), start, end, step, kept, deadline)


def routes(service: AlertService) -> list[Route]:
    one_at_a_time = asyncio.Semaphore(1)

    async def answer(request: Request, ranged: bool) -> JSONResponse:
        try:
            values = await params(request)
            deadline = _deadline(values)
            async with one_at_a_time:
                engine = Engine(service.store.snapshot(), service.evaluator.engine.lookback)
                kept = kept_metrics(service)
                if ranged:
                    result = await asyncio.to_thread(_range, engine, values, kept, deadline)
                else:
                    result = await asyncio.to_thread(_instant, engine, values, kept)
        except BadData as exc:
            return error("bad_data", str(exc), 400)
        except ExecutionError as exc:
            return error("execution", str(exc), 422)
        except QueryTimeout as exc:
            return error("timeout", str(exc), 503)
        return success(result.data(), result.warnings)

    async def query(request: Request) -> JSONResponse:
        return await answer(request, ranged=False)

    async def query_range(request: Request) -> JSONResponse:
        return await answer(request, ranged=True)

    async def alerts(_: Request) -> JSONResponse:
        groups = rule_states(service.evaluator, service.period)
        return success({"alerts": [alert_json(a) for g in groups for r in g.rules for a in r.alerts]})

    async def rules(request: Request) -> JSONResponse:
        wanted = request.query_params.get("type", "").lower()
        if wanted and wanted not in RULE_TYPES:
            return error("bad_data", f'invalid parameter "type": not supported value "{wanted}"', 400)
        kind = RULE_TYPES.get(wanted)
        shown = [group_json(g, kind) for g in rule_states(service.evaluator, service.period)]
        return success({"groups": [g for g in shown if g["rules"] or kind is None]})

    async def build_info(_: Request) -> JSONResponse:
        return success(_build_info())

    return [
        Route("/api/v1/query", query, methods=["GET", "POST"]),
        Route("/api/v1/query_range", query_range, methods=["GET", "POST"]),
        Route("/api/v1/alerts", alerts, methods=["GET"]),
        Route("/api/v1/rules", rules, methods=["GET"]),
        Route("/api/v1/status/buildinfo", build_info, methods=["GET"]),
    ]
