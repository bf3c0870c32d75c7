"""In-process servers on 127.0.0.1 for the alert tests: real sockets, real clients, no processes."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import yaml
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.paths import REPO
from trustusbank.alerts.rule_tests import load_groups
from trustusbank.manifests.prometheus import PrometheusRule, RuleGroup

RULES = REPO / "deploy" / "10-observability" / "prometheus-rules.yaml"
FIXTURES = Path(__file__).resolve().parent / "promtool"

T = TypeVar("T")

CONVERTER = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"


def deploy_groups() -> list[RuleGroup]:
    return load_groups(RULES)


def prepare_workdir(directory: Path) -> Path:
    """The test files, their own rule files, and the shipped PrometheusRule's spec as `rules.yaml`."""
    (directory / "rules.yaml").write_text(yaml.safe_dump(deploy_rule().rule_file(), sort_keys=False))
    for path in FIXTURES.glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    return directory


def deploy_rule() -> PrometheusRule:
    body = yaml.safe_load(RULES.read_text())
    return PrometheusRule.from_body(body, body["metadata"]["name"], body["metadata"]["namespace"])


async def poll(fetch: Callable[[], Awaitable[T]], until: Callable[[T], bool], seconds: float = 20) -> T:
    """Call `fetch` every 0.1 s until `until` holds for its result; the last result otherwise."""
    deadline = time.monotonic() + seconds
    result = await fetch()
    while not until(result) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        result = await fetch()
    return result


def metrics_app(registry: CollectorRegistry) -> Starlette:
    """A component's /metrics, as telemetry.control serves it."""

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", metrics)])
