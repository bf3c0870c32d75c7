"""The small admin endpoint every mesh component serves: /metrics and /healthz/ready."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


def control_app(registry: CollectorRegistry, ready: Callable[[], bool]) -> Starlette:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def readiness(_: Request) -> PlainTextResponse:
        is_ready = ready()
        return PlainTextResponse("ready" if is_ready else "starting", status_code=200 if is_ready else 503)

    return Starlette(routes=[Route("/metrics", metrics), Route("/healthz/ready", readiness)])
