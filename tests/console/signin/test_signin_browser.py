"""The write-up's sign-in in a real browser: the dashboard sends chromium to the provider's form,
admin@kagent.local / admin signs in, and the dashboard shows, with nothing refused by any page's
Content-Security-Policy on the way (the form's post, and the redirect after it, included). And
what a person sees when it is refused: a wrong password, a callback this browser never started
(CSRF), a code used twice, and after signing out.

Debian's chromium driven by Playwright, as the other browser tests; it skips, saying why, where
either is missing (CI installs both for the `browser` group).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Page, expect

from tests.chromium import chromium_or_skip, sandbox
from tests.console.signin.world import ADMIN, serve_on, url_of
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.console.dashboard import create_app
from trustusbank.console.signin.chain import sign_in_chain
from trustusbank.console.signin.frontdoor import CALLBACK, SIGN_OUT
from trustusbank.workloads.serving import bind

pytestmark = pytest.mark.browser

WAIT_MS = 30_000  # an upper bound for a page on a busy machine
COOKIE = "_oauth2_proxy"


@dataclass
class Console:
    context: BrowserContext
    issuer: str
    origin: str  # the dashboard's
    page_url: str
    refused: list[str]  # what any page's Content-Security-Policy refused

    async def tab(self) -> Page:
        page = await self.context.new_page()
        page.on("console", self._csp)
        return page

    def _csp(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    async def session(self) -> str | None:
        return next((c["value"] for c in await self.context.cookies() if c["name"] == COOKIE), None)


@asynccontextmanager
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    """The dashboard behind its front door, the provider, and chromium, all on 127.0.0.1."""
    api = pytest.importorskip("playwright.async_api", reason="Playwright is not installed")
    chromium = chromium_or_skip()
    files = ClusterFiles(tmp_path / "state")
    files.make()
    dashboard, provider = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    issuer, origin = url_of(provider), url_of(dashboard)
    chain = sign_in_chain(files.state, issuer, [(create_app(files), origin)])
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve_on(provider, chain.provider))
        await stack.enter_async_context(serve_on(dashboard, chain.pages[0]))
        playwright = await stack.enter_async_context(api.async_playwright())
        browser = await playwright.chromium.launch(executable_path=chromium, chromium_sandbox=sandbox())
        stack.push_async_callback(browser.close)
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        yield Console(context, issuer, origin, f"{origin}/d/dora-evidence?refresh=off", [])


async def fill_in(page: Page, email: str, password: str) -> None:
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_admin_signs_in_through_the_form_and_sees_the_dashboard(tmp_path: Path) -> None:
    async with console(tmp_path) as c:
        page = await c.tab()
        await page.goto(c.page_url)
        await page.wait_for_url(f"{c.issuer}/auth?**", timeout=WAIT_MS)
        login_title = await page.title()
        await fill_in(page, *ADMIN)
        await page.wait_for_url(c.page_url, timeout=WAIT_MS)
        heading = await page.locator("h1").first.inner_text()
        await page.screenshot(path=tmp_path / "signed-in.png", full_page=True)
        cookies = {k["name"]: k for k in await c.context.cookies()}
    assert login_title == "Sign in · trustusbank"
    assert heading == "DORA evidence"
    assert cookies[COOKIE]["httpOnly"] is True
    assert cookies[COOKIE]["sameSite"] == "Lax"
    assert c.refused == []


async def test_a_wrong_password_stays_on_the_form_saying_so_with_no_session(tmp_path: Path) -> None:
    async with console(tmp_path) as c:
        page = await c.tab()
        await page.goto(c.page_url)
        await page.wait_for_url(f"{c.issuer}/auth?**", timeout=WAIT_MS)
        await fill_in(page, ADMIN[0], "not the password")
        await expect(page.get_by_text("Wrong e-mail or password.")).to_be_visible(timeout=WAIT_MS)
        assert page.url.startswith(c.issuer)
        assert await page.get_by_label("E-mail").input_value() == ADMIN[0]  # kept, the password not
        assert await page.get_by_label("Password").input_value() == ""
        assert await c.session() is None
    assert c.refused == []


async def test_a_callback_this_browser_never_started_is_refused_as_csrf(tmp_path: Path) -> None:
    """A link to the callback with someone else's code and state: the browser holds no sign-in
    cookie for that state, so the door refuses it, with a page, and sets no session."""
    async with console(tmp_path) as c:
        page = await c.tab()
        answer = await page.goto(f"{c.origin}{CALLBACK}?code=someone-elses&state=not-this-browsers")
        assert answer is not None
        assert answer.status == 403
        await expect(page.locator("h1")).to_have_text("Sign-in refused")
        await expect(page.locator(".problem")).to_contain_text("CSRF")
        assert await c.session() is None


async def test_a_code_used_twice_is_refused_and_signing_out_ends_the_session(tmp_path: Path) -> None:
    async with console(tmp_path) as c:
        page = await c.tab()
        callbacks: list[str] = []
        page.on("request", lambda r: callbacks.append(r.url) if CALLBACK in r.url else None)
        await page.goto(c.page_url)
        await page.wait_for_url(f"{c.issuer}/auth?**", timeout=WAIT_MS)
        await fill_in(page, *ADMIN)
        await page.wait_for_url(c.page_url, timeout=WAIT_MS)
        signed_in = await c.session()

        again = await page.goto(callbacks[0])  # the same code, state and browser: the code is spent
        assert again is not None
        assert again.status == 403
        await expect(page.locator("h1")).to_have_text("Sign-in refused")

        await page.goto(f"{c.origin}{SIGN_OUT}")
        await expect(page).to_have_title("Signed out · trustusbank")
        assert await c.session() is None
        await page.goto(c.page_url)
        await page.wait_for_url(f"{c.issuer}/auth?**", timeout=WAIT_MS)  # a session is needed again
    assert signed_in is not None
    assert c.refused == []
