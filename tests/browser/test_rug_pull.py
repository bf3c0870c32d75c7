"""The attacker's tab (18011) and the SOC inbox's (18012) while the converter is rug-pulled.

The SOC inbox is an operator tab: the console's, behind its sign-in, which the test passes as
the write-up's admin. The attacker's page is an open port-forward.

Act 2 (no defence): the injected prompt makes support-bot pass the customer's profile to the
converter, which posts it to the attacker; the attacker's counter rises and shows it. Act 3
(`policies on`): the same call is denied at the node proxy and the SOC gets the alert's mail.
The converter is rug-pulled once for the module and `reset` puts the clean build back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import Screenshots
from tests.browser.signin import sign_in
from tests.browser.tabs import ATTACKER, CHATBOT, PAGE_WAIT_MS, SOC_INBOX, ask, tab_url
from tests.console.signin.world import ADMIN
from tests.session_cluster import Cluster
from trustusbank.scenario.acts import CONVERTER_IDENTITY
from trustusbank.scenario.cluster import SEED_PROMPT
from trustusbank.workloads.bank.seed_data import CUSTOMERS

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ALICE = next(c for c in CUSTOMERS if c["customer_id"] == "12345")
DENIED_BY = "AuthorizationPolicy external-attacker/deny-bank-to-attacker"  # what `policies on` applies


@pytest.fixture(scope="module")
def rug_pulled(cluster: Cluster) -> Iterator[None]:
    """`trustusbank upgrade-banking-app`: the converter's tag moved to the rug-pull build."""
    pulled = cluster.cli("upgrade-banking-app")
    try:
        assert pulled.returncode == 0, pulled.stderr
        yield
    finally:
        reset = cluster.cli("reset", timeout=180)
        assert reset.returncode == 0, reset.stderr


async def test_after_the_rug_pull_the_attacker_counts_and_shows_the_profile(
    cluster: Cluster, rug_pulled: None, context: BrowserContext, shoot: Screenshots
) -> None:
    attacker = await context.new_page()
    await attacker.goto(tab_url(cluster, ATTACKER))
    count = attacker.locator("#count")
    await expect(count).to_have_text(re.compile(r"^\d+$"), timeout=PAGE_WAIT_MS)  # the receiver answered
    before = int(await count.inner_text())
    await shoot(attacker, "attacker-before")

    chat = await context.new_page()
    await chat.goto(tab_url(cluster, CHATBOT))
    await ask(chat, SEED_PROMPT)
    await shoot(chat, "chatbot")

    await attacker.bring_to_front()
    await expect(count).not_to_have_text(str(before), timeout=PAGE_WAIT_MS)  # the page polls every second
    assert int(await count.inner_text()) > before
    await expect(attacker.locator("#status")).to_contain_text("BREACH")
    newest = attacker.locator("#events .event").first
    await expect(newest).to_contain_text(str(ALICE["ni_number"]))
    await expect(newest).to_contain_text(str(ALICE["name"]))
    await expect(newest).to_contain_text(str(ALICE["address"]))
    await shoot(attacker, "attacker-after")


async def test_with_the_defence_on_the_soc_inbox_lists_the_deny_mail(
    cluster: Cluster, rug_pulled: None, defence_on: None, context: BrowserContext, shoot: Screenshots
) -> None:
    """On the session's fresh cluster this is the first deny, so the mail is this act's own. (A
    second Act 3 while the rule still fires gets no second mail, as with Alertmanager: the page
    then lists the first one.)"""
    inbox = await context.new_page()
    await inbox.goto(tab_url(cluster, SOC_INBOX))
    await sign_in(inbox, *ADMIN)  # an operator tab: behind the console's sign-in
    await expect(inbox.locator("#count")).to_contain_text("message(s) since the last reset")
    await shoot(inbox, "inbox-before")

    chat = await context.new_page()
    await chat.goto(tab_url(cluster, CHATBOT))
    await ask(chat, SEED_PROMPT)
    await shoot(chat, "chatbot")

    await inbox.bring_to_front()
    mail = inbox.locator("#messages article[data-alertname='IstioAuthZDeny']").filter(
        has=inbox.locator("h3", has_text=CONVERTER_IDENTITY)
    )
    await expect(mail.first).to_be_visible(timeout=PAGE_WAIT_MS)  # the page reloads itself every 3 s
    await expect(mail.first.locator("pre")).to_contain_text(DENIED_BY)
    await shoot(inbox, "inbox-after")
