"""Port 18001: the write-up's Grafana tab, `/d/dora-evidence`, served by the operator's console.

`create_app(files)` serves the DORA evidence dashboard drawn from `telemetry.dashboard`'s
panels (the same definitions Kubernetes mode hands Grafana), with:
- `/d/dora-evidence` (and `/`, which redirects there): the page (`page.py`);
- `/api/panels/<id>?from=&to=`: one panel's data as JSON, what the charts draw;
- `/evidence/<seq>`: one evidence record, where a row's "log line" link lands;
- `/static/`: the page's style and script, and the vendored uPlot (MIT) that draws the charts.

PromQL goes to the alert evaluator's Prometheus API (at its pod's app address unless told
otherwise), evidence comes from the store under the state directory, which only the operator
can read: hence a console process, not a pod. A panel's answer is kept for `CACHE_SECONDS`
under its absolute range, so the chart script's request right after the page reuses the
page's queries instead of asking the evaluator, which answers one query at a time, again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Topology
from trustusbank.console import page, record_page
from trustusbank.console.evidence_view import EvidenceReader
from trustusbank.console.html import HEADERS, document
from trustusbank.console.panels import ALL, PanelData, answer, choices_of, panel
from trustusbank.console.prometheus import Prometheus, PrometheusError, evaluator_url
from trustusbank.console.timerange import BadRange, TimeRange, resolve
from trustusbank.evidence import QueryError
from trustusbank.telemetry.dashboard import PANELS, VARIABLES

STATIC = Path(__file__).parent / "static"
CACHE_SECONDS = 20.0
CACHE_SIZE = 64

Key = tuple[int, float, float, float, tuple[tuple[str, str], ...]]


class Answers:
    """Recent panel answers by (panel, absolute range, choices), for `CACHE_SECONDS`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._kept: OrderedDict[Key, tuple[float, PanelData]] = OrderedDict()

    def get(self, key: Key) -> PanelData | None:
        found = self._kept.get(key)
        if found is None or self.clock() - found[0] > CACHE_SECONDS:
            return None
        return found[1]

    def put(self, key: Key, data: PanelData) -> None:
        if data.errors:
            return  # ask again next time: the evaluator may be back
        self._kept[key] = (self.clock(), data)
        self._kept.move_to_end(key)
        while len(self._kept) > CACHE_SIZE:
            self._kept.popitem(last=False)


class Dashboard:
    def __init__(self, files: ClusterFiles, prometheus_url: str | None, sessions_url: str | None) -> None:
        self.files = files
        self.prometheus_url = prometheus_url
        self.sessions_url = sessions_url
        self.evidence = EvidenceReader(files)
        self.answers = Answers()
        self.http: httpx.AsyncClient | None = None

    def api(self) -> Prometheus | PrometheusError:
        """The Prometheus API to ask, or why there is none (no topology, no evaluator in it)."""
        assert self.http is not None, "the app's lifespan opens the client"
        url = self.prometheus_url
        if url is None:
            try:
                url = evaluator_url(Topology.load(self.files.topology))
            except PrometheusError as exc:
                return exc
            except (OSError, ValueError, KeyError) as exc:
                return PrometheusError(f"the cluster's topology cannot be read: {exc}")
        return Prometheus(url, self.http)

    async def panel(
        self, panel_id: int, window: TimeRange, choices: dict[str, str], api: Prometheus | PrometheusError
    ) -> PanelData:
        found = panel(panel_id)
        assert found is not None
        key: Key = (panel_id, window.since, window.until, window.step, tuple(sorted(choices.items())))
        data = self.answers.get(key)
        if data is None:
            data = await answer(found, window, choices, api, self.evidence)
            self.answers.put(key, data)
        return data


def _choices(request: Request) -> dict[str, str]:
    return {v.name: request.query_params.get(f"var-{v.name}") or ALL for v in VARIABLES}


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _bad(message: str, status: int = 400) -> HTMLResponse:
    body = (
        f'<main><h1>Cannot show that</h1><p class="problem">{escape(message)}</p>'
        f'<p><a href="{page.PATH}">Back</a></p></main>'
    )
    return _html(document("Cannot show that · trustusbank console", body), status)


def create_app(
    files: ClusterFiles, prometheus_url: str | None = None, sessions_url: str | None = None
) -> Starlette:
    """The dashboard over `files`' cluster; `prometheus_url` defaults to the alert evaluator's pod."""
    board = Dashboard(files, prometheus_url, sessions_url)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(trust_env=False) as http:
            board.http = http
            yield

    async def root(request: Request) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{page.PATH}{query}", status_code=302)

    async def dashboard(request: Request) -> Response:
        try:
            window = resolve(request.query_params)
        except BadRange as exc:
            return _bad(str(exc))
        chosen = _choices(request)
        problem = await asyncio.to_thread(board.evidence.refresh)
        api = board.api()
        choices = []
        problems = [problem] if problem else []
        for variable in VARIABLES:
            values, trouble = await choices_of(variable, window, api, board.evidence)
            problems += [f"{variable.label}: {t}" for t in trouble if not isinstance(api, PrometheusError)]
            if chosen[variable.name] != ALL and chosen[variable.name] not in values:
                values = sorted([*values, chosen[variable.name]])
            choices.append(page.Choice(variable, values, chosen[variable.name]))
        panels = [await board.panel(p.id, window, chosen, api) for p in PANELS]
        denies = await asyncio.to_thread(board.evidence.denies, window.since, window.until)
        if isinstance(api, PrometheusError):
            problems.append(f"PromQL panels: {api}")
        view = page.View(
            window, panels, choices, denies, problems,
            None if isinstance(api, PrometheusError) else api.url, board.sessions_url,
        )  # fmt: skip
        return _html(page.render(view))

    async def panel_json(request: Request) -> Response:
        panel_id = int(request.path_params["panel_id"])
        if panel(panel_id) is None:
            return JSONResponse({"error": f"no panel {panel_id}"}, status_code=404, headers=HEADERS)
        try:
            window = resolve(request.query_params)
        except BadRange as exc:
            return JSONResponse({"error": str(exc)}, status_code=400, headers=HEADERS)
        data = await board.panel(panel_id, window, _choices(request), board.api())
        body = {**data.to_json(), "from": window.start, "to": window.end, "step": window.step}
        return JSONResponse(body, headers=HEADERS)

    async def evidence_record(request: Request) -> Response:
        seq = int(request.path_params["seq"])
        await asyncio.to_thread(board.evidence.refresh)
        try:
            view = await asyncio.to_thread(board.evidence.record, seq)
        except QueryError:
            return _bad(f"There is no evidence record #{seq}.", 404)
        return _html(record_page.render(view, seq, board.sessions_url))

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/", root),
            Route(page.PATH, dashboard),
            Route(page.PATH + "/{slug}", dashboard),  # Grafana's /d/<uid>/<slug>
            Route("/api/panels/{panel_id:int}", panel_json),
            Route("/evidence/{seq:int}", evidence_record),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        lifespan=lifespan,
    )
