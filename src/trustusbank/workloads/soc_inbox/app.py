"""The SOC inbox's HTTP face: a page of the mail received, a JSON API, and a view reset.

Every field shown comes from a message anyone who can reach the SMTP port could
have written, so the page escapes all of it (server-side, no script). GET
/api/messages (`?all=1`, `?since=<epoch>`, `?limit=`), GET /api/messages/<id>,
GET /api/count, POST /api/reset (moves the view, deletes nothing), GET /healthz.
The SMTP server starts with the app and stops with it.
"""

from __future__ import annotations

import contextlib
import html
import logging
import string
import time
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from trustusbank.cluster.topology import Topology
from trustusbank.env import POD_IP, SMTP_PORT, TOPOLOGY
from trustusbank.workloads.soc_inbox.smtp import InboxHandler, start_smtp
from trustusbank.workloads.soc_inbox.store import MailStore

log = logging.getLogger(__name__)


def _everything(request: Request) -> bool:
    return request.query_params.get("all", "").lower() in {"1", "true", "yes"}


def _severity(subject_and_body: str) -> str:
    for level in ("critical", "warning"):
        if f"severity {level}" in subject_and_body:
            return level
    return ""


def render(messages: list[dict[str, Any]], count: int, total: int) -> str:
    page = string.Template(files("trustusbank.workloads.soc_inbox").joinpath("page.html").read_text("utf-8"))
    items = []
    for m in messages:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(m["received_at"]))
        sender = m["peer_identity"] or m["peer"]
        items.append(
            f"<article class='{_severity(m['body'])}' data-id='{m['id']}'"
            f" data-alertname='{html.escape(m['alertname'] or '')}'><h3>{html.escape(m['subject'])}</h3>"
            f"<div class='meta'>#{m['id']} · {html.escape(when)} · from {html.escape(m['mail_from'])}"
            f" via {html.escape(sender)}</div><pre>{html.escape(m['body'])}</pre></article>"
        )
    body = "".join(items) or "<p class='empty'>No mail. Nothing has fired.</p>"
    return page.safe_substitute(count=count, total=total, messages=body)


def create_app(
    store: MailStore,
    smtp_bind: tuple[str, int] | None,
    identify: Callable[[str], str | None] = lambda _: None,
) -> Starlette:
    handler = InboxHandler(store, identify)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server = await start_smtp(handler, *smtp_bind) if smtp_bind else None
        if server is not None:
            host, port = server.sockets[0].getsockname()[:2]
            app.state.smtp_address = (host, port)
            log.info("SOC inbox SMTP listening on %s:%d", host, port)
        try:
            yield
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()

    async def messages(request: Request) -> JSONResponse:
        try:
            limit = max(1, min(1000, int(request.query_params.get("limit", "100"))))
            raw_since = request.query_params.get("since")
            since = float(raw_since) if raw_since else None
        except ValueError:
            return JSONResponse({"error": "limit and since must be numbers"}, status_code=400)
        everything = _everything(request)
        return JSONResponse(
            {
                "count": store.count(everything=everything),
                "messages": store.messages(everything=everything, limit=limit, received_since=since),
            }
        )

    async def one(request: Request) -> JSONResponse:
        try:
            found = store.message(int(request.path_params["message_id"]))
        except ValueError:
            found = None
        if found is None:
            return JSONResponse({"error": "no such message"}, status_code=404)
        return JSONResponse(found)

    async def count(request: Request) -> JSONResponse:
        return JSONResponse(
            {"count": store.count(everything=_everything(request)), "total": store.count(everything=True)}
        )

    async def reset(_: Request) -> JSONResponse:
        return JSONResponse({"count": 0, "total": store.reset_view()})

    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(render(store.messages(limit=200), store.count(), store.count(everything=True)))

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/api/messages", messages, methods=["GET"]),
            Route("/api/messages/{message_id}", one, methods=["GET"]),
            Route("/api/count", count, methods=["GET"]),
            Route("/api/reset", reset, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/", index, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def topology_identities(path: Path) -> Callable[[str], str | None]:
    """Map a peer address to the SPIFFE ID of the pod that owns it (None if nobody does)."""

    def identify(ip: str) -> str | None:
        try:
            topology = Topology.load(path)
        except (OSError, ValueError, KeyError):
            return None
        pod = topology.pod_by_ip(ip)
        return pod.spiffe_uri(topology.trust_domain) if pod else None

    return identify


def create_app_from_env(db: Path) -> Starlette:
    """In a pod: SMTP on the pod's own address (what 0.0.0.0 means there) at TRUSTUSBANK_SMTP_PORT."""
    host = POD_IP.read() or "127.0.0.1"
    port = SMTP_PORT.read()
    topology = TOPOLOGY.read()
    identify = topology_identities(topology) if topology is not None else (lambda _: None)
    return create_app(MailStore(db), (host, port), identify)
