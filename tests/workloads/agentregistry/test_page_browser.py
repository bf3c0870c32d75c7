"""The registry page in a browser at 1280x800: no horizontal scrolling; the optional refresh works."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.chromium import chromium_or_skip, sandbox
from tests.workloads.agentregistry.support import CONVERTER, push_converter, store_env

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = chromium_or_skip()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, chromium_sandbox=sandbox())
        yield launched
        launched.close()


def scroll_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_the_page_fits_1280_px_without_script_even_with_every_digest_open(serve, images, browser) -> None:
    store, keys = images
    push_converter(store, "real-rugpull", keys.red_team())
    registry = serve("agentregistry", env=store_env(store))
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(registry.url)
        assert page.locator("#servers tr[data-name]").count() == 4
        # The style ran (its hash is in the page's policy): without it nothing here would be measured.
        assert page.locator("#servers").evaluate("t => getComputedStyle(t).tableLayout") == "fixed"
        assert scroll_width(page) <= VIEWPORT["width"]
        summaries = page.locator("details.digest > summary")
        for i in range(summaries.count()):
            summaries.nth(i).click()
        assert page.locator("details.digest[open]").count() == summaries.count()
        assert scroll_width(page) <= VIEWPORT["width"]
    finally:
        context.close()


def test_the_script_refreshes_the_rows_and_keeps_open_digests_open(serve, images, browser) -> None:
    store, _ = images
    registry = serve("agentregistry", env=store_env(store))
    context = browser.new_context(viewport=VIEWPORT)
    blocked: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(registry.url)
        row = f'#servers tr[data-name="{CONVERTER}"]'
        assert page.locator(row).get_attribute("class") == "ok"
        page.locator(f'details[data-key="{CONVERTER}|pinned"] > summary').click()

        push_converter(store, "mock-rugpull", signer=None)
        page.wait_for_selector(f"{row}.drift", timeout=30_000)  # the next refresh, not a reload
        assert page.locator(row).get_attribute("data-signature") == "unsigned"
        assert page.locator(f'details[data-key="{CONVERTER}|pinned"]').get_attribute("open") is not None
        assert page.locator("#refresh").inner_text().startswith("Refreshed every")
        assert blocked == []
    finally:
        context.close()
