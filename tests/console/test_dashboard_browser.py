"""/d/dora-evidence in a real browser at 1280x800: uPlot draws every time series panel, nothing
errs in the console (the page's own policy included), and nothing is wider than the window.

Debian's chromium driven by Playwright; the test skips, saying why, where either is missing
(CI installs both for the `browser` group).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.chromium import chromium_or_skip, sandbox
from tests.console.board import HOSTILE, act3, board, refused_at_destination
from trustusbank.telemetry.dashboard import PANELS

pytestmark = pytest.mark.browser

CHART_WAIT_MS = 30_000  # an upper bound: three range queries on a busy machine


async def test_the_charts_draw_without_a_console_error_and_the_page_fits_1280_px(tmp_path: Path) -> None:
    api = pytest.importorskip("playwright.async_api", reason="Playwright is not installed")
    chromium = chromium_or_skip()
    series = [p for p in PANELS if p.kind == "timeseries"]
    async with board(tmp_path) as b:
        await act3(b)
        b.evaluator.node.closed.labels(**refused_at_destination(HOSTILE + "x" * 200)).inc()  # unbreakable
        await b.evaluator.step(b.t0 + 3)
        url = f"{b.url}/d/dora-evidence?{urlencode({'refresh': 'off', **b.window()})}"
        async with api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, chromium_sandbox=sandbox())
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                page = await context.new_page()
                problems: list[str] = []
                page.on(
                    "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
                )
                page.on("pageerror", lambda e: problems.append(str(e)))
                await page.goto(url)
                drawn = page.locator("figure.chart[data-state=drawn]")
                await api.expect(drawn).to_have_count(len(series), timeout=CHART_WAIT_MS)
                canvases = {
                    p.id: await page.locator(f"#panel-{p.id} figure.chart canvas").count() for p in series
                }
                legends = await page.locator("#panel-5 figure.chart .u-legend").inner_text()
                await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
                width = await page.evaluate("document.documentElement.scrollWidth")
                images = await page.locator("img").count()
                await page.locator("tr.record a.log").first.click()
                await page.wait_for_url("**/evidence/*")
                record_width = await page.evaluate("document.documentElement.scrollWidth")
            finally:
                await browser.close()
    assert canvases == {p.id: 1 for p in series}
    assert HOSTILE in legends  # the legend is uPlot's, written as text
    assert images == 0
    assert problems == []
    assert width <= 1280
    assert record_width <= 1280
