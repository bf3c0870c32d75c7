"""Signing in in the browser, where an operator tab's front door has sent it.

Every operator tab (the console's pages, and the pods' pages it relays: alerts, SOC inbox,
agent registry) sends a browser without a session to the sign-in provider's form. One
sign-in covers them all: the session cookie is the host's, whichever port set it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Page, expect

from tests.browser.tabs import PAGE_WAIT_MS


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def sign_in(page: Page, user: str, password: str) -> None:
    """On the provider's form that `page` was sent to: sign in as `user`, and wait until the
    browser is back on the tab first asked for (the provider's own origin left)."""
    button = page.get_by_role("button", name="Sign in")
    await expect(button).to_be_visible(timeout=PAGE_WAIT_MS)
    provider = _origin(page.url)
    await page.get_by_label("E-mail").fill(user)
    await page.get_by_label("Password").fill(password)
    await button.click()
    await page.wait_for_url(lambda url: _origin(url) != provider, timeout=PAGE_WAIT_MS)
