"""The registry's HTTP face: a JSON catalogue API and a page for people.

Entries are computed once at start-up (tool lists come from each build through
a real MCP client); the pins they are compared against live in SQLite. What
each tag runs now, and who signed it, is read from the image store per request.
The page is rendered from the same entries as the API, on the server; its
Content-Security-Policy lets only its own inline style and script run.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from trustusbank.env import AGENTREGISTRY_CATALOGUE, IMAGE_STORE, SettingError
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.manifest import ManifestError
from trustusbank.paths import deploy_dir
from trustusbank.workloads.agentregistry.catalogue import (
    CatalogueError,
    PinStore,
    Registered,
    build_entries,
    catalogue_from_bundle,
    parse_catalogue,
    running_image,
)
from trustusbank.workloads.agentregistry.view import inline_hashes, render_page

if TYPE_CHECKING:
    from trustusbank.workloads.entrypoints import Workload


def create_app(
    manifests: Path,
    catalogue: list[Registered] | None,
    pins: PinStore,
    workloads: Mapping[str, Workload],
    images: Path | None = None,
) -> Starlette:
    """The app; `catalogue` None means: read it from the manifests' ConfigMap; `images` is the image
    store's directory (None: running digests and signatures are not checked)."""
    try:
        bundle = load_bundle(manifests)
    except ManifestError as exc:
        raise CatalogueError(f"cannot read the manifests: {exc}") from exc
    registered = catalogue if catalogue is not None else catalogue_from_bundle(bundle)
    state: dict[str, Any] = {"entries": []}
    page = files("trustusbank.workloads.agentregistry").joinpath("page.html").read_text(encoding="utf-8")
    csp = page_policy(page)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        state["entries"] = await build_entries(bundle, registered, pins, workloads)
        yield

    def current(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, **running_image(images, entry)}

    async def servers(_: Request) -> JSONResponse:
        entries = [current(e) for e in state["entries"]]
        return JSONResponse({"count": len(entries), "servers": entries})

    async def server(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        for entry in state["entries"]:
            if entry["name"] == name:
                return JSONResponse(current(entry))
        return JSONResponse({"error": f"no server named {name!r} is registered"}, status_code=404)

    async def index(_: Request) -> HTMLResponse:
        entries = [current(e) for e in state["entries"]]
        return HTMLResponse(
            render_page(page, entries, time.time()),
            headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"},
        )

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "servers": len(state["entries"])})

    return Starlette(
        routes=[
            Route("/api/servers", servers),
            Route("/api/servers/{name:path}", server),
            Route("/healthz", healthz),
            Route("/", index),
        ],
        lifespan=lifespan,
    )


def page_policy(page: str) -> str:
    """Nothing loads or runs but the page's own inline style and script and its fetch of itself."""
    return "; ".join(
        [
            "default-src 'none'",
            "style-src " + " ".join(inline_hashes(page, "style")),
            "script-src " + " ".join(inline_hashes(page, "script")),
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def create_app_from_env(db: Path, workloads: Mapping[str, Workload]) -> Starlette:
    """As deployed: the catalogue file from `AGENTREGISTRY_CATALOGUE` if set, else the manifests."""
    try:
        file = AGENTREGISTRY_CATALOGUE.read()
    except SettingError as exc:
        raise CatalogueError(str(exc)) from None
    catalogue = None if file is None else parse_catalogue(file.read_text(encoding="utf-8"), str(file))
    return create_app(deploy_dir(), catalogue, PinStore(db), workloads, IMAGE_STORE.read())
