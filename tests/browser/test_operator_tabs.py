"""The operator's tabs the console relays to pods (SOC inbox 18012, alerts 18002, agent registry
18006): behind the console's sign-in, one sign-in for all of them, and the pages' own polling
working through the door.
"""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import Screenshots
from tests.browser.signin import sign_in
from tests.browser.tabs import ALERTS, PAGE_WAIT_MS, REGISTRY, SOC_INBOX, tab_url
from tests.console.signin.world import ADMIN
from tests.session_cluster import Cluster
from trustusbank.console.signin.frontdoor import SIGN_OUT

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

REGISTRY_HEADING = "agentregistry — MCP servers (DORA Art. 28 register)"


async def test_one_sign_in_opens_every_operator_tab_and_signing_out_of_one_closes_all(
    cluster: Cluster, context: BrowserContext, shoot: Screenshots
) -> None:
    inbox_url = tab_url(cluster, SOC_INBOX)
    inbox = await context.new_page()
    await inbox.goto(inbox_url)
    await expect(inbox).to_have_title("Sign in · trustusbank", timeout=PAGE_WAIT_MS)  # no session yet
    await shoot(inbox, "sign-in")
    await sign_in(inbox, *ADMIN)
    assert inbox.url == inbox_url
    await expect(inbox.locator("h1")).to_have_text("SOC inbox")
    await shoot(inbox, "inbox")

    alerts = await context.new_page()
    await alerts.goto(tab_url(cluster, ALERTS))  # no second sign-in: the session is the host's
    assert alerts.url == tab_url(cluster, ALERTS)
    await expect(alerts.locator("h1")).to_have_text("Alerts")
    await shoot(alerts, "alerts")

    registry_url = tab_url(cluster, REGISTRY)
    registry = await context.new_page()
    await registry.goto(registry_url)
    await expect(registry.locator("h1")).to_have_text(REGISTRY_HEADING)
    async with registry.expect_response(
        lambda r: r.url == registry_url and r.request.resource_type == "fetch", timeout=PAGE_WAIT_MS
    ) as refreshed:  # the page re-fetches itself every 5 s, through the door
        pass
    answer = await refreshed.value
    assert answer.status == 200
    await expect(registry.locator("#refresh")).to_have_text("Refreshed every 5 s.")
    await shoot(registry, "registry")

    await alerts.goto(tab_url(cluster, ALERTS).removesuffix("/alerts") + SIGN_OUT)
    # No reload of our own: the inbox refreshes itself every 3 s (a meta refresh), and a reload
    # racing that navigation is aborted by it. Its own next refresh must land on the sign-in.
    await expect(inbox).to_have_title("Sign in · trustusbank", timeout=PAGE_WAIT_MS)
    await shoot(inbox, "inbox-signed-out")
