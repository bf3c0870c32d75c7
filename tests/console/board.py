"""Port 18001 under test: the dashboard over a real evidence store and a real alert evaluator.

The evidence is the three acts as the components' own writers write them (tests/evidence/story.py);
the PromQL panels ask the alert evaluator's routes (tests/alerts/console.py: a real node proxy's
metrics scraped over HTTP, the evaluator stepped with its own clock). The evaluator is stepped at
wall-clock seconds just after the story was written, so one absolute range holds both, and every
page below asks for that range: nothing depends on when the test runs. `DashboardPage` reads the
page as a reader with script off sees it.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from tests.alerts.console import TO_ATTACKER, Stack, stack
from tests.evidence.story import CONVERTER, DENY_POLICY, Story
from tests.serving import serving
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.console.dashboard import create_app
from trustusbank.mesh.ztunnel.labels import peer_labels

SESSIONS = "http://127.0.0.1:18007"  # where trace links point; the sessions console is another app
HOSTILE = "spiffe://cluster.local/ns/x/sa/<img src=x onerror=alert(1)>"


def refused_at_destination(source_principal: str) -> dict[str, str]:
    """A connection the destination's node proxy closed as DENY, with Istio's labels."""
    labels = peer_labels("destination", None, source_principal, None, None, None, True)
    labels.update(
        response_flags="DENY",
        destination_workload="mock-attacker",
        destination_workload_namespace="external-attacker",
    )
    return labels


async def act3(b: Board) -> None:
    """What the node proxies counted while the story ran: one exfiltration allowed, then one denied
    (at the source, its outcome; at the destination, the policy's denial and Istio's DENY close)."""
    await b.evaluator.step(b.t0)
    b.evaluator.node.attempts.labels(**TO_ATTACKER, outcome="allowed").inc()
    await b.evaluator.step(b.t0 + 1)
    b.evaluator.node.attempts.labels(**TO_ATTACKER, outcome="denied").inc()
    b.evaluator.node.denied.labels(
        policy=DENY_POLICY,
        reason="explicitly denied",
        source_principal=CONVERTER,
        destination_workload="mock-attacker",
        destination_workload_namespace="external-attacker",
    ).inc()
    b.evaluator.node.closed.labels(**refused_at_destination(CONVERTER)).inc()
    await b.evaluator.step(b.t0 + 2)


@dataclass
class Board:
    evaluator: Stack
    story: Story
    files: ClusterFiles
    url: str
    http: httpx.AsyncClient
    t0: float  # the evaluator's first step: a whole second after the story was written

    def window(self, before: float = 600, after: float = 60) -> dict[str, str]:
        """`from`/`to` (epoch ms, as the page's own links say them) around the story and the steps."""
        return {"from": str(round((self.t0 - before) * 1000)), "to": str(round((self.t0 + after) * 1000))}

    async def page(self, **params: str) -> DashboardPage:
        response = await self.http.get("/d/dora-evidence", params={"refresh": "off", **params})
        assert response.status_code == 200, response.text
        return DashboardPage(response.text)

    async def panel(self, panel_id: int, **params: str) -> Any:
        response = await self.http.get(f"/api/panels/{panel_id}", params=params)
        assert response.status_code == 200, response.text
        return response.json()


@asynccontextmanager
async def board(tmp_path: Path) -> AsyncIterator[Board]:
    files = ClusterFiles(tmp_path / "state")
    story = Story(files).all_acts(tmp_path)
    t0 = float(math.ceil(time.time()))
    try:
        async with stack(tmp_path) as evaluator:
            app = create_app(files, prometheus_url=evaluator.url, sessions_url=SESSIONS)
            async with serving(app) as url, httpx.AsyncClient(base_url=url, trust_env=False) as http:
                yield Board(evaluator, story, files, url, http, t0)
    finally:
        story.close()


class DashboardPage(HTMLParser):
    """What /d/dora-evidence shows with script off: each panel's text, series rows, evidence rows, links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.html = html
        self.panels: dict[str, dict[str, Any]] = {}  # data-panel -> {title, kind, text, series, records, ...}
        self.scripts: list[str] = []
        self.links: list[str] = []
        self._panel: dict[str, Any] | None = None
        self._depth = 0
        self._capture: list[str] | None = None
        self._row: dict[str, Any] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "script":
            self.scripts.append(found.get("src", "<inline>"))
        if tag == "a":
            self.links.append(found.get("href", ""))
        if tag == "section" and "data-panel" in found:
            self._panel = {
                "kind": found["data-kind"], "title": "", "text": [], "series": {}, "records": [],
                "charts": [], "stats": [], "cells": [],
            }  # fmt: skip
            self.panels[found["data-panel"]] = self._panel
            self._depth = 0
        if self._panel is None:
            return
        if tag == "section":
            self._depth += 1
        if tag == "h2" and not self._panel["title"]:
            self._capture = []
        elif tag == "figure" and "data-src" in found:
            self._panel["charts"].append(found["data-src"])
        elif tag == "tr" and "data-seq" in found:
            self._row = {"seq": int(found["data-seq"]), "kind": found["data-kind"], "text": [], "links": []}
            self._panel["records"].append(self._row)
        elif tag == "tr" and found.get("class") == "series":
            self._row = {"cells": []}
        elif tag == "a" and self._row is not None and "links" in self._row:
            self._row["links"].append(found.get("href", ""))
        elif tag == "td" and self._row is not None and "cells" in self._row:
            self._capture = []

    def handle_endtag(self, tag: str) -> None:
        if self._panel is None:
            return
        if tag == "h2" and self._capture is not None and not self._panel["title"]:
            self._panel["title"] = "".join(self._capture)
            self._capture = None
        elif tag == "td" and self._row is not None and "cells" in self._row and self._capture is not None:
            self._row["cells"].append("".join(self._capture))
            self._capture = None
        elif tag == "tr" and self._row is not None:
            if "cells" in self._row:
                name, last, peak = self._row["cells"]
                self._panel["series"][name] = (last, peak)
            self._row = None
        elif tag == "section":
            self._depth -= 1
            if self._depth == 0:
                self._panel = None

    def handle_data(self, data: str) -> None:
        if self._panel is None:
            return
        self._panel["text"].append(data)
        if self._capture is not None:
            self._capture.append(data)
        if self._row is not None and "text" in self._row:
            self._row["text"].append(data)

    def text(self, panel: str) -> str:
        return " ".join(" ".join(self.panels[panel]["text"]).split())
