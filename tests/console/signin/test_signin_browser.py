"""The write-up's sign-in in a real browser: the dashboard sends chromium to the provider's form,
admin@kagent.local / admin signs in, and the dashboard shows, with nothing refused by any page's
Content-Security-Policy on the way (the form's post, and the redirect after it, included).

Debian's chromium driven by Playwright, as the other browser tests; it skips, saying why, where
either is missing (CI installs both for the `browser` group).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.chromium import chromium_or_skip, sandbox
from tests.console.signin.world import ADMIN, serve_on, url_of
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.console.dashboard import create_app
from trustusbank.console.signin.chain import sign_in_chain
from trustusbank.workloads.serving import bind

pytestmark = pytest.mark.browser

WAIT_MS = 30_000  # an upper bound for a page on a busy machine


async def test_admin_signs_in_through_the_form_and_sees_the_dashboard(tmp_path: Path) -> None:
    api = pytest.importorskip("playwright.async_api", reason="Playwright is not installed")
    chromium = chromium_or_skip()
    files = ClusterFiles(tmp_path / "state")
    files.make()
    dashboard, provider = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    issuer, page_url = url_of(provider), f"{url_of(dashboard)}/d/dora-evidence?refresh=off"
    chain = sign_in_chain(files.state, issuer, [(create_app(files), url_of(dashboard))])
    refused: list[str] = []
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve_on(provider, chain.provider))
        await stack.enter_async_context(serve_on(dashboard, chain.pages[0]))
        playwright = await stack.enter_async_context(api.async_playwright())
        browser = await playwright.chromium.launch(executable_path=chromium, chromium_sandbox=sandbox())
        stack.push_async_callback(browser.close)
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        await page.goto(page_url)
        await page.wait_for_url(f"{issuer}/auth?**", timeout=WAIT_MS)
        login_title = await page.title()
        await page.get_by_label("E-mail").fill(ADMIN[0])
        await page.get_by_label("Password").fill(ADMIN[1])
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(page_url, timeout=WAIT_MS)
        heading = await page.locator("h1").first.inner_text()
        await page.screenshot(path=tmp_path / "signed-in.png", full_page=True)
        cookies = {c["name"]: c for c in await context.cookies()}
    assert login_title == "Sign in · trustusbank"
    assert heading == "DORA evidence"
    assert cookies["_oauth2_proxy"]["httpOnly"] is True
    assert cookies["_oauth2_proxy"]["sameSite"] == "Lax"
    assert refused == []
