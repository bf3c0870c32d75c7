"""Port 18001 as the auditor meets it: /d/dora-evidence, its panels' JSON, and the record behind a row.

The evidence is the three acts as the components write them; the PromQL panels ask a real alert
evaluator that scraped a real node proxy's counters over HTTP (tests/console/board.py).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx

from tests.console.board import HOSTILE, SESSIONS, DashboardPage, act3, board, refused_at_destination
from tests.evidence.story import (
    ATTACKER_ID,
    CLEAN,
    CONVERTER,
    CONVERTER_IMAGE,
    DENY_POLICY,
    EVIL_TOOL,
    RUGPULL,
    SUPPORT_BOT,
)
from tests.serving import refused_url, serving
from trustusbank.console.dashboard import create_app
from trustusbank.evidence import Query, open_store, query
from trustusbank.telemetry.dashboard import EXTERNAL, PANELS

STATIC_SCRIPTS = ["/static/uplot/uPlot.iife.min.js", "/static/dashboard.js"]


async def test_every_panel_is_on_the_page_with_what_prometheus_answers(tmp_path: Path) -> None:
    async with board(tmp_path) as b:
        await act3(b)
        page = await b.page(**b.window())
        alerts = (await b.evaluator.get("/api/v1/alerts"))["data"]["alerts"]
        charts = {p.id: await b.panel(p.id, **b.window()) for p in PANELS if p.kind == "timeseries"}
        chart_urls = {pid: page.panels[str(pid)]["charts"] for pid in charts}
        again = {pid: (await b.http.get(urls[0])).json() for pid, urls in chart_urls.items()}

    assert set(page.panels) == {str(p.id) for p in PANELS} | {"denies"}
    for p in PANELS:
        shown = page.panels[str(p.id)]
        assert (shown["title"], shown["kind"]) == (p.title, p.kind)
        assert p.description in page.text(str(p.id))
    assert sorted(page.scripts) == sorted(STATIC_SCRIPTS)

    # Stat: the alerts firing at the range's end, as the evaluator's own API lists them.
    firing = [a for a in alerts if a["state"] == "firing"]
    assert {a["labels"]["alertname"] for a in firing} == {"BankToAttackerAttempt", "IstioAuthZDeny"}
    stat = page.text("1").split("nothing is tried.")[1]
    assert stat.split()[:2] == [str(len(firing)), "firing"]
    assert "1 allowed" in page.text("2")
    assert "1 denied" in page.text("2")

    # Time series: each series' value at the end and its peak, server-side; the chart's JSON alike.
    by_rule = Counter(a["labels"]["alertname"] for a in firing)
    assert page.panels["3"]["series"] == {rule: (str(n), str(n)) for rule, n in by_rule.items()}
    assert page.panels["6"]["series"] == {"allowed": ("1", "1"), "denied": ("1", "1")}
    # Our node proxy names the policy; Istio's DENY close of the same connection is not counted again.
    assert page.panels["4"]["series"] == {f"L4 {DENY_POLICY}: explicitly denied": ("1", "1")}
    assert page.panels["5"]["series"] == {f"{CONVERTER} (L4)": ("1", "1")}
    for pid, data in charts.items():
        assert [len(urls) for urls in [chart_urls[pid]]] == [1]
        assert again[pid] == data  # the page's own chart URL answers the same data
        assert data["step"] == 3  # 660 s in at most 240 points
        assert data["times"] == [data["from"] + 3 * n for n in range(len(data["times"]))]
        assert data["times"][-1] == data["to"]
        assert {s["name"] for s in data["series"]} == set(page.panels[str(pid)]["series"])
    [allowed] = [s for s in charts[6]["series"] if s["name"] == "allowed"]
    at = {t: v for t, v in zip(charts[6]["times"], allowed["values"], strict=True)}
    before = {v for t, v in at.items() if t < b.t0 + 1}
    after = {v for t, v in at.items() if t >= b.t0 + 1}
    assert before == {None}  # before the first increment: a gap, not a zero
    assert after == {1}

    # Table: the labels are the record.
    table = page.text("7")
    for alert in firing:  # the labels the query keeps (`max by (...)`), with the alert's state
        for name in ("alertname", "severity", "offender", "source_principal"):
            assert alert["labels"][name] in table
    assert "firing" in table
    # What the embedded cluster has no engine for: said on the panel, the evidence shown instead.
    assert "kube-state-metrics" in page.text("8")
    assert "is not kept here" in page.text("8")  # the evaluator's own warning, shown
    started = [r for r in page.panels["8"]["records"] if r["kind"] == "started"]
    assert ["".join(r["text"]).count(d) for r, d in zip(started, (RUGPULL, CLEAN), strict=True)] == [1, 1]
    assert "Loki" in page.text("9")


def test_the_image_panel_reads_what_no_component_exports() -> None:
    """The stand-in follows the panel that reads kube-state-metrics' series, named in EXTERNAL."""
    from trustusbank.console.panels import IMAGES_METRIC, reads_images

    assert IMAGES_METRIC in {e.name for e in EXTERNAL}
    assert [p.id for p in PANELS if any(reads_images(q) for q in p.queries)] == [8]


async def test_a_deny_row_shows_identity_image_digest_and_links_to_its_trace_and_log_line(
    tmp_path: Path,
) -> None:
    async with board(tmp_path) as b:
        await act3(b)
        page = await b.page(**b.window())
        [row] = page.panels["9"]["records"]
        record = await b.http.get(f"/evidence/{row['seq']}")
        mine = await b.page(**b.window(), **{"var-identity": CONVERTER})
        others = await b.page(**b.window(), **{"var-identity": SUPPORT_BOT})
        missing = await b.http.get("/evidence/99999")
        traces, connections = b.story.traces, b.story.connection_traces

    assert row["kind"] == "l4-deny"
    text = "".join(row["text"])
    for shown in (CONVERTER, ATTACKER_ID, CONVERTER_IMAGE, RUGPULL, DENY_POLICY):
        assert shown in text
    # Its trace: the destination decided before any trace existed, so the traces joined to it
    # (the tool call that was running, the source's refusal of the same connection) are linked.
    assert sorted(row["links"]) == sorted(
        [
            f"{SESSIONS}/traces/{traces['3']}",
            f"{SESSIONS}/traces/{connections['3']}",
            f"/evidence/{row['seq']}",
        ]
    )
    assert record.status_code == 200
    assert "connection closed due to policy rejection" in record.text
    assert "logs/ztunnel-trustusbank-worker2.jsonl#" in record.text
    behind = DashboardPage(record.text)
    assert f"{SESSIONS}/traces/{traces['3']}" in behind.links
    assert any(link.startswith("/evidence/") and link != f"/evidence/{row['seq']}" for link in behind.links)

    # Every deny, at every layer, is on the record section; one offender's view keeps its own.
    assert [r["kind"] for r in page.panels["denies"]["records"]] == ["a2a-deny", "mcp-deny", "l4-deny"]
    assert [r["seq"] for r in mine.panels["9"]["records"]] == [row["seq"]]
    assert others.panels["9"]["records"] == []
    assert f'<option value="{CONVERTER}" selected>' in mine.html
    assert missing.status_code == 404


async def test_the_time_range_decides_what_is_shown(tmp_path: Path) -> None:
    async with board(tmp_path) as b:
        await act3(b)
        before = await b.page(**b.window(before=7200, after=-3600))
        relative = await b.http.get(
            "/d/dora-evidence", params={"from": "now-5m", "to": "now", "refresh": "10s"}
        )
        default = await b.http.get("/d/dora-evidence")
        redirect = await b.http.get("/", params={"from": "now-30m"})
        bad = await b.http.get("/d/dora-evidence", params={"from": "<b>yesterday</b>"})
        bad_json = await b.http.get("/api/panels/6", params={"from": "now", "to": "now-5m"})
        too_often = await b.http.get("/d/dora-evidence", params={"refresh": "1s"})
        no_panel = await b.http.get("/api/panels/99")
        [deny] = query(open_store(b.files), Query(kinds=("l4-deny",)))
        at = math.ceil(datetime.fromisoformat(deny.time).timestamp() * 1000)  # not on the 3 s grid
        up_to = await b.page(**{"from": str(at - 600_000), "to": str(at)})
        just_before = await b.page(**{"from": str(at - 600_000), "to": str(at - 1)})

    # Evidence is read to the range's last millisecond, whatever grid the PromQL panels use.
    assert [r["seq"] for r in up_to.panels["9"]["records"]] == [deny.seq]
    assert just_before.panels["9"]["records"] == []
    assert before.panels["9"]["records"] == before.panels["denies"]["records"] == []
    assert before.panels["6"]["series"] == {}
    assert "No data in this range." in before.text("6")
    assert "further than the alert evaluator keeps samples" in before.html
    start, end = b.t0 - 7200, b.t0 - 3600
    shown = " ".join(before.html.split("Showing ", 1)[1].split(" UTC", 1)[0].split())
    fmt = "%Y-%m-%d %H:%M:%S"
    assert shown == (
        f"<time>{time.strftime(fmt, time.gmtime(start))}</time> to "
        f"<time>{time.strftime(fmt, time.gmtime(end))}</time>"
    )

    assert relative.status_code == 200
    assert '<meta http-equiv="refresh" content="10">' in relative.text
    assert 'class="preset on" href="?from=now-5m&amp;to=now&amp;refresh=10s"' in relative.text
    assert 'href="?from=now-15m&amp;to=now&amp;refresh=10s"' in relative.text
    assert '<meta http-equiv="refresh" content="30">' in default.text  # Grafana's dashboard refreshes at 30s
    assert 'class="preset on" href="?from=now-15m' in default.text
    assert (redirect.status_code, redirect.headers["location"]) == (302, "/d/dora-evidence?from=now-30m")
    assert bad.status_code == 400
    assert "&lt;b&gt;yesterday&lt;/b&gt;" in bad.text
    assert "<b>yesterday" not in bad.text
    assert bad_json.status_code == 400
    assert "is not before" in bad_json.json()["error"]
    assert too_often.status_code == 400
    assert no_panel.status_code == 404


async def test_a_hostile_label_and_a_hostile_tool_name_are_text(tmp_path: Path) -> None:
    async with board(tmp_path) as b:
        await b.evaluator.step(b.t0)
        b.evaluator.node.closed.labels(**refused_at_destination(HOSTILE)).inc()
        await b.evaluator.step(b.t0 + 1)
        response = await b.http.get("/d/dora-evidence", params={"refresh": "off", **b.window()})
        chart = await b.panel(5, **b.window())

    page = DashboardPage(response.text)
    assert f"{HOSTILE} (L4)" in page.panels["5"]["series"]  # read back as text...
    assert "<img" not in response.text  # ...never markup
    assert f'<option value="{HOSTILE.replace("<", "&lt;").replace(">", "&gt;")}">' in response.text
    assert any(EVIL_TOOL in "".join(r["text"]) for r in page.panels["denies"]["records"])
    assert "<script>alert" not in response.text
    assert sorted(page.scripts) == sorted(STATIC_SCRIPTS)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert f"{HOSTILE} (L4)" in [s["name"] for s in chart["series"]]  # JSON carries it as data


async def test_without_an_answering_prometheus_the_evidence_still_shows(tmp_path: Path) -> None:
    """Nothing listens where PromQL should go: each PromQL panel says so, no panel is silently empty."""
    sock, nowhere = refused_url()
    async with board(tmp_path) as b:
        app = create_app(b.files, prometheus_url=nowhere, sessions_url=None)
        async with serving(app) as url, httpx.AsyncClient(base_url=url, trust_env=False) as http:
            response = await http.get("/d/dora-evidence", params={"refresh": "off", **b.window()})
    sock.close()
    assert response.status_code == 200
    page = DashboardPage(response.text)
    for p in PANELS:
        if p.kind != "logs":
            assert f"{nowhere} did not answer" in page.text(str(p.id))
    assert page.panels["3"]["series"] == {}
    [row] = page.panels["9"]["records"]
    assert "trace" in "".join(row["text"])  # trace ids shown, not linked, with no sessions console
    assert row["links"] == [f"/evidence/{row['seq']}"]
