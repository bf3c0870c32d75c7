"""Port 18002 under test: the evaluator stepped with its own clock, its routes served without its loop.

A real node proxy's metric classes are served on /metrics and scraped over HTTP; every answer
reads the state the test's steps left, so every timestamp is exact. `AlertsPage` reads /alerts
as a reader (or a browser with script off) sees it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from tests.alerts.helpers import CONVERTER, deploy_groups, metrics_app
from tests.serving import serving
from trustusbank.alerts.app import routes
from trustusbank.alerts.service import AlertService
from trustusbank.alerts.targets import Target
from trustusbank.manifests.prometheus import RuleGroup
from trustusbank.mesh.ztunnel.metrics import ZtunnelMetrics

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
ATTEMPTS = "trustusbank_outbound_attempts_total"
TO_ATTACKER = {
    "source_workload": "currency-converter",
    "source_workload_namespace": "trustusbank-bank-vendors",
    "source_principal": CONVERTER,
    "destination_workload": "mock-attacker",
    "destination_workload_namespace": "external-attacker",
    "destination_service_name": "mock-attacker",
    "destination_service_namespace": "external-attacker",
}


@dataclass
class Stack:
    node: ZtunnelMetrics
    service: AlertService
    http: httpx.AsyncClient
    url: str  # where the evaluator's routes are served
    instance: str  # the node proxy's scrape address, as the `instance` label says it

    async def step(self, t: float) -> None:
        await self.service.step(t)

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, path: str, **form: Any) -> Any:
        response = await self.http.post(path, data=form)
        assert response.status_code == 200, response.text
        return response.json()


@asynccontextmanager
async def stack(tmp_path: Path, groups: list[RuleGroup] | None = None) -> AsyncIterator[Stack]:
    node = ZtunnelMetrics()
    rules = deploy_groups() if groups is None else groups
    async with serving(metrics_app(node.registry)) as node_url:
        service = AlertService(
            groups_source=lambda: rules,
            targets_source=lambda: [Target("ztunnel", f"{node_url}/metrics")],
            log_path=tmp_path / "logs" / "alerts.jsonl",
            quarantine_dir=tmp_path / "quarantine",
        )
        async with (
            serving(Starlette(routes=routes(service))) as url,
            httpx.AsyncClient(base_url=url, trust_env=False) as http,
        ):
            yield Stack(node, service, http, url, node_url.removeprefix("http://"))


class AlertsPage(HTMLParser):
    """What /alerts shows a reader (no script runs): each rule's state and its alert rows' text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rules: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}
        self._rule: str | None = None
        self._row: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "details" and found.get("data-rule"):
            self._rule = str(found["data-rule"])
            self.rules[self._rule] = {"state": found["data-state"], "open": "open" in found, "alerts": []}
        elif tag == "tr" and found.get("class") == "alert" and self._rule is not None:
            self._row = []
            self.rules[self._rule]["alerts"].append((found["data-state"], self._row))
        elif tag == "a" and found.get("data-count") is not None:
            self.counts[str(found["class"]).split()[0]] = int(str(found["data-count"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        elif tag == "details":
            self._rule = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row.append(data)
