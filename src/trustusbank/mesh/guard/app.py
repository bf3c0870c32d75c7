"""`trustusbank serve mcp-guard`: the guard as the HTTP service the waypoint calls.

POST /request and POST /response take the contract's bodies (`wire`) and answer 200 with a
decision, or 400 for a body that is not the contract's (the waypoint then fails closed).
GET /pins shows the pinned definitions to the auditor, GET /metrics the counters, GET
/healthz readiness. Deciding runs in a worker thread: the pin store is SQLite, and one slow
disk must not stall every other call the waypoint is waiting on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trustusbank.env import LOGS_DIR
from trustusbank.mesh.guard.dataflow import TaintMemory
from trustusbank.mesh.guard.evidence import LOG_NAME, GuardEvidence, GuardMetrics
from trustusbank.mesh.guard.guard import McpGuard
from trustusbank.mesh.guard.pins import PinStore
from trustusbank.mesh.guard.wire import Decision, WireError, parse_request, parse_response
from trustusbank.paths import state_dir

MAX_BODY = 4 * 1024 * 1024  # the MCP SDK server's own request limit: nothing larger reaches a backend


async def _body(request: Request) -> bytes | None:
    """The request body, or None once it passes MAX_BODY (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    pins_db: Path, log_path: Path, max_parties: int = 1024, max_values: int = 512, ttl: float = 3600.0
) -> Starlette:
    """The guard; data-flow memory holds `max_parties` caller sessions of `max_values` values for `ttl` s."""
    metrics = GuardMetrics()
    memory = TaintMemory(
        max_parties, max_values, ttl, on_drop=lambda reason, n: metrics.dropped.labels(reason).inc(n)
    )
    guard = McpGuard(PinStore(pins_db), memory, GuardEvidence(log_path, metrics))

    def judge(decide: Callable[[bytes], Decision]) -> Callable[[Request], object]:
        async def endpoint(request: Request) -> Response:
            body = await _body(request)
            if body is None:
                return JSONResponse({"error": f"body larger than {MAX_BODY} bytes"}, status_code=400)
            try:
                decision = await run_in_threadpool(decide, body)
            except WireError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(decision.answer())

        return endpoint

    async def pins(_: Request) -> JSONResponse:
        return JSONResponse({"pins": await run_in_threadpool(guard.pins.listing)})

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/request", judge(lambda raw: guard.on_request(parse_request(raw))), methods=["POST"]),
            Route("/response", judge(lambda raw: guard.on_response(parse_response(raw))), methods=["POST"]),
            Route("/pins", pins, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )


def create_app_from_env(pins_db: Path) -> Starlette:
    """The pod's app: pins in the state directory, evidence in TRUSTUSBANK_LOGS_DIR (else state/logs)."""
    configured = LOGS_DIR.read()
    logs = configured if configured is not None else state_dir() / "logs"
    return create_app(pins_db, logs / LOG_NAME)
