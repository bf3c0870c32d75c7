"""The attacker's HTTP face: POST /exfil takes loot; the page and JSON API show it.

Every request is answered; a body it cannot parse is stored all the same. The
page goes red as soon as anything has arrived, which is the demo's breach signal.
"""

from __future__ import annotations

import logging
from importlib.resources import files

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from trustusbank.workloads.attacker.store import EventStore

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024


def _everything(request: Request) -> bool:
    return request.query_params.get("all", "").lower() in {"1", "true", "yes"}


def create_app(store: EventStore) -> Starlette:
    page = files("trustusbank.workloads.attacker").joinpath("page.html").read_text(encoding="utf-8")

    async def exfil(request: Request) -> JSONResponse:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
        source = request.client.host if request.client else "unknown"
        event_id = store.record(
            source_addr=source,
            path=request.url.path,
            content_type=request.headers.get("content-type"),
            body=body,
        )
        log.warning("EXFIL RECEIVED id=%d from=%s bytes=%d", event_id, source, len(body))
        return JSONResponse({"received": len(body), "stored": True, "id": event_id})

    async def events(request: Request) -> JSONResponse:
        try:
            limit = max(1, min(1000, int(request.query_params.get("limit", "100"))))
        except ValueError:
            return JSONResponse({"error": "limit must be an integer"}, status_code=400)
        everything = _everything(request)
        return JSONResponse(
            {
                "count": store.count(everything=everything),
                "events": store.events(everything=everything, limit=limit),
            }
        )

    async def count(request: Request) -> JSONResponse:
        return JSONResponse(
            {"count": store.count(everything=_everything(request)), "total": store.count(everything=True)}
        )

    async def reset(_: Request) -> JSONResponse:
        return JSONResponse({"count": 0, "total": store.reset_view()})

    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/exfil", exfil, methods=["POST"]),
            Route("/api/events", events, methods=["GET"]),
            Route("/api/count", count, methods=["GET"]),
            Route("/api/reset", reset, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/", index, methods=["GET"]),
        ]
    )
