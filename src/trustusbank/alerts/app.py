"""`trustusbank serve alerts`: the alert evaluator as a workload, with its API and pages.

GET /api/alerts (`?since=<epoch>`: only alerts that fired since then) is what the demo
reads. The console's port 18002 shows what a Prometheus user expects there: the alerts
page at /alerts (`alerts_page.py`; / redirects to it) and Prometheus' query, rules and
alerts API under /api/v1 (`prometheus_api.py`), all from this one evaluator's state.
In a cluster pod it finds everything the platform gives a pod: the PrometheusRules in
force (deploy/ plus what was applied, re-read when a file changes, as the Prometheus
Operator reloads them), the scrape targets in the topology, and the SOC inbox by its
Service name through the mesh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import BaseRoute, Route

from trustusbank.alerts import alerts_page, prometheus_api
from trustusbank.alerts.notifier import NotifyPolicy
from trustusbank.alerts.rule_states import rule_states
from trustusbank.alerts.service import LOG_NAME, AlertService, interval_from_env, smtp_address
from trustusbank.alerts.smtp_client import socks_proxy
from trustusbank.alerts.targets import Target, targets_from_topology
from trustusbank.cluster.layout import DEFENCE_DIR, ClusterFiles
from trustusbank.cluster.topology import Topology
from trustusbank.env import ALERTS_SMTP, LOGS_DIR, TOPOLOGY
from trustusbank.manifests.prometheus import RuleGroup, rules_in_files
from trustusbank.manifests.yaml_source import yaml_files
from trustusbank.paths import deploy_dir, state_dir


class _Cached:
    """Reload a file-derived value only when the file changes (mtime and size)."""

    def __init__(self, path: Path, load: Callable[[Path], Any]) -> None:
        self.path, self.load = path, load
        self._stamp: tuple[int, int] | None = None
        self.value: Any = None

    def get(self) -> Any:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self.value, self._stamp = self.load(self.path), stamp
        return self.value


def _rule_files(topology: Path | None) -> list[Path]:
    """deploy/ (without the separately applied defence set) plus, in a cluster, what was applied."""
    deploy = deploy_dir()
    defence = (deploy / DEFENCE_DIR).resolve()
    found = [f for f in yaml_files(deploy) if not f.resolve().is_relative_to(defence)]
    if topology is not None:
        applied = ClusterFiles(topology.parent.parent).applied
        found += yaml_files(applied) if applied.exists() else []
    return found


def _rules_source(topology: Path | None) -> Callable[[], list[RuleGroup]]:
    """The rules in force, re-read when a manifest file changes (as the operator reloads Prometheus)."""
    seen: tuple[tuple[str, int, int], ...] | None = None
    current: list[RuleGroup] = []

    def load() -> list[RuleGroup]:
        nonlocal seen, current
        files = _rule_files(topology)
        stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        if stamp != seen:
            seen = stamp  # a broken edit is reported once; the last good rules stay until the next edit
            current = rules_in_files(files)
        return current

    return load


def service_from_env() -> AlertService:
    topology_path = TOPOLOGY.read()
    cached = _Cached(topology_path, Topology.load) if topology_path else None

    def topology() -> Topology | None:
        return cached.get() if cached else None

    def targets() -> list[Target]:
        found = topology()
        return targets_from_topology(found) if found else []

    configured_logs = LOGS_DIR.read()
    logs = configured_logs if configured_logs is not None else state_dir() / "logs"
    return AlertService(
        groups_source=_rules_source(topology_path),
        targets_source=targets,
        log_path=logs / LOG_NAME,
        quarantine_dir=state_dir() / "quarantine",
        smtp=smtp_address(ALERTS_SMTP.read()),
        proxy=socks_proxy(dict(os.environ)),
        interval=interval_from_env(),
        policy=NotifyPolicy.from_env(),
        topology_source=topology,
    )


def routes(service: AlertService) -> list[BaseRoute]:
    """Every route, reading `service`'s state; whoever serves them runs its loop (or steps it)."""

    def _since(request: Request) -> float | None:
        raw = request.query_params.get("since")
        return float(raw) if raw else None

    async def api_alerts(request: Request) -> JSONResponse:
        try:
            since = _since(request)
        except ValueError:
            return JSONResponse(
                {"error": "since must be a number (seconds since the epoch)"}, status_code=400
            )
        return JSONResponse(service.snapshot(since))

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "evaluations": service.evaluations})

    async def index(_: Request) -> RedirectResponse:
        return RedirectResponse("/alerts", status_code=302)  # as Prometheus sends / to its UI

    async def page(request: Request) -> HTMLResponse:
        groups = rule_states(service.evaluator, service.period)
        resolved = list(service.evaluator.resolved)
        only = request.query_params.get("state")
        return HTMLResponse(alerts_page.render(groups, resolved, service.snapshot(), only))

    return [
        Route("/api/alerts", api_alerts, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", index, methods=["GET"]),
        Route("/alerts", page, methods=["GET"]),
        *prometheus_api.routes(service),
    ]


def create_app(service: AlertService) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            yield
        finally:
            stop.set()
            await task

    return Starlette(routes=routes(service), lifespan=lifespan)


def create_app_from_env() -> Starlette:
    # One request log line per scrape (seven a second) would drown the pod's log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return create_app(service_from_env())
