"""/alerts in a real browser with script off: a firing alert readable, nothing wider than 1280 px.

Debian's chromium driven by Playwright; the test skips, saying why, where either is missing
(CI installs both for the `browser` group).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.alerts.console import T0, TO_ATTACKER, stack
from tests.chromium import chromium_or_skip, sandbox

pytestmark = pytest.mark.browser

HOSTILE = "spiffe://cluster.local/ns/x/sa/<img src=x onerror=alert(1)>" + "a" * 240  # no break opportunity


async def test_the_page_fits_1280_px_and_reads_without_script(tmp_path: Path) -> None:
    api = pytest.importorskip("playwright.async_api", reason="Playwright is not installed")
    chromium = chromium_or_skip()
    async with stack(tmp_path) as s:
        await s.step(T0)
        s.node.attempts.labels(**{**TO_ATTACKER, "source_principal": HOSTILE}, outcome="allowed").inc()
        await s.step(T0 + 1)
        async with api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, chromium_sandbox=sandbox())
            try:
                context = await browser.new_context(
                    viewport={"width": 1280, "height": 800}, java_script_enabled=False
                )
                page = await context.new_page()
                await page.goto(f"{s.url}/alerts")
                rule = page.locator("details[data-rule=BankToAttackerAttempt]")
                await api.expect(rule).to_have_attribute("data-state", "firing")
                await api.expect(rule.locator("tr.alert")).to_contain_text(f'source_principal="{HOSTILE}"')
                await page.screenshot(path=tmp_path / "alerts.png", full_page=True)
                width = await page.evaluate("document.documentElement.scrollWidth")
                images = await page.locator("img").count()
            finally:
                await browser.close()
    assert width <= 1280
    assert images == 0  # the hostile label is text, not markup
