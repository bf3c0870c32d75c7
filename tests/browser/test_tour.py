"""The presenter's tour: the write-up's eight tabs, in its order, in each of the three acts.

Each act is set up as a presenter sets it up (Act 1 `reset`; Act 2 `upgrade-banking-app` with
the defence off; Act 3 the same with `policies on`), the seed prompt is typed into the chatbot,
and every tab of `console.tabs.TABS` is opened (signed in once, as the write-up's admin),
checked for what the presenter points at in that act, and pictured: the screenshots folder
printed at the end of the run holds `…-act<N>-<k>-<tab>.png`, a reviewer's tour of the console.

Each act sets up its own state, so any one runs alone; the module ends on `reset`, leaving the
session's cluster as it found it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import Screenshots
from tests.browser.signin import sign_in
from tests.browser.tabs import PAGE_WAIT_MS, ask, url_for
from tests.console.signin.world import ADMIN
from tests.session_cluster import Cluster
from trustusbank.agents.scripted.money import fmt
from trustusbank.console.tabs import TABS, Tab
from trustusbank.scenario.acts import CONVERTER_IDENTITY
from trustusbank.scenario.cluster import SEED_PROMPT
from trustusbank.workloads.bank.seed_data import CUSTOMERS

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ALICE = next(c for c in CUSTOMERS if c["customer_id"] == "12345")
BALANCE = fmt(Decimal(str(ALICE["balance"])), str(ALICE["currency"]))
CONVERTER = "acme-fx/currency-converter"
DENIED_BY = "external-attacker/deny-bank-to-attacker"  # what `policies on` applies
SETUP = {
    1: [("reset",)],
    2: [("upgrade-banking-app",), ("policies", "off")],
    3: [("upgrade-banking-app",), ("policies", "on")],
}
SEED_TOOLS = ["get_balance", "list_recent", "convert_currency"]
FOOLED_TOOLS = [*SEED_TOOLS, "get_profile", "convert_currency"]  # the injected call chain


@pytest.fixture(scope="module")
def tour(cluster: Cluster) -> Iterator[Cluster]:
    """The acts change the cluster; `reset` puts it back, whatever happened."""
    try:
        yield cluster
    finally:
        reset = cluster.cli("reset", timeout=180)
        assert reset.returncode == 0, reset.stderr


def tab(key: str) -> Tab:
    return next(t for t in TABS if t.key == key)


class Walk:
    """One act's walk: each tab in a page of its own (the inbox and the alerts page reload
    themselves, which would race a navigation in a shared page), checked, then pictured."""

    def __init__(self, cluster: Cluster, context: BrowserContext, shoot: Screenshots, act: int) -> None:
        self.cluster, self.context, self.shoot, self.act = cluster, context, shoot, act
        self.attacker_before = 0
        self.context_id = ""  # the chatbot's A2A context: the console's session id

    async def open(self, key: str) -> Page:
        page = await self.context.new_page()
        await page.goto(url_for(self.cluster, tab(key)))
        return page

    async def picture(self, page: Page, key: str) -> None:
        await self.shoot(page, f"act{self.act}-{TABS.index(tab(key)) + 1}-{key}")


async def attacker_count(page: Page) -> int:
    count = page.locator("#count")
    await expect(count).to_have_text(re.compile(r"^\d+$"), timeout=PAGE_WAIT_MS)  # the receiver answered
    return int(await count.inner_text())


async def check_chatbot(walk: Walk, page: Page) -> None:
    """The same reply in every act: the customer never sees the attack or the defence."""
    await expect(page.locator("#conversation .bubble.agent").last).to_contain_text(
        f"Your balance is {BALANCE}"
    )


async def check_attacker(walk: Walk, page: Page) -> None:
    count = page.locator("#count")
    if walk.act == 2:
        await expect(count).not_to_have_text(str(walk.attacker_before), timeout=PAGE_WAIT_MS)
        await expect(page.locator("#status")).to_contain_text("BREACH")
        newest = page.locator("#events .event").first
        await expect(newest).to_contain_text(str(ALICE["ni_number"]))
        await expect(newest).to_contain_text(str(ALICE["address"]))
    else:  # the page polls every second: a late arrival would show before the next tab is done
        assert await attacker_count(page) == walk.attacker_before


async def check_registry(walk: Walk, page: Page) -> None:
    if walk.act == 1:
        await expect(page.locator(".summary.ok")).to_be_visible()
    else:  # same tag, other bytes: the register sees it, the runtime is what stops it
        await expect(page.locator(".summary.drift")).to_contain_text(CONVERTER)


async def check_converter(walk: Walk, page: Page) -> None:
    entry = json.loads(await page.locator("body").inner_text())
    pinned, running = entry["pinned"]["digest"], entry["running"]["digest"]
    assert (pinned == running) is (walk.act == 1), (pinned, running)


async def check_dashboard(walk: Walk, page: Page) -> None:
    await expect(page.locator("h1")).to_have_text("DORA evidence")
    if walk.act == 3:  # the deny, its identity and the rug-pulled digest, linked to its trace
        row = page.locator("tr", has_text=CONVERTER_IDENTITY).filter(has_text=DENIED_BY).first
        await expect(row).to_be_visible(timeout=PAGE_WAIT_MS)
        await expect(row).to_contain_text("sha256:")
        await expect(row.locator("a", has_text="trace").first).to_be_visible()


async def check_alerts(walk: Walk, page: Page) -> None:
    firing = {2: "BankToAttackerAttempt", 3: "IstioAuthZDeny"}.get(walk.act)
    if firing is None:
        return
    rule = page.locator(f"details.rule[data-rule='{firing}']")
    await expect(rule.locator("summary .badge")).to_have_text(
        re.compile("firing", re.I), timeout=PAGE_WAIT_MS
    )


async def check_inbox(walk: Walk, page: Page) -> None:
    await expect(page.locator("#count")).to_contain_text("message(s)")
    if walk.act == 3:  # the page reloads itself every 3 s until the mail is there
        mail = page.locator("#messages article[data-alertname='IstioAuthZDeny']").filter(
            has=page.locator("h3", has_text=CONVERTER_IDENTITY)
        )
        await expect(mail.first).to_be_visible(timeout=PAGE_WAIT_MS)
        await expect(mail.first.locator("pre")).to_contain_text(DENIED_BY)


async def reloaded_until(page: Page, url: str, selector: str) -> None:
    """Open `url` until it shows `selector`: agents and proxies export spans in batches, so the
    chatbot's session and its trace reach the console a moment after the reply does."""
    deadline = asyncio.get_running_loop().time() + PAGE_WAIT_MS / 1000
    while True:
        response = await page.goto(url)
        if response is not None and response.ok and await page.locator(selector).count():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{url} never showed {selector}")
        await asyncio.sleep(0.5)


async def check_sessions(walk: Walk, page: Page) -> None:
    """The chatbot's session: support-bot's tool calls, and in Act 3 the deny in its trace."""
    base = url_for(walk.cluster, tab("sessions")).rstrip("/")
    await reloaded_until(page, f"{base}/sessions/{walk.context_id}", "a[href^='/traces/']")
    names = re.findall(r"tool (\w+) <span", await page.content())
    assert names == (SEED_TOOLS if walk.act == 1 else FOOLED_TOOLS), names
    if walk.act == 2:  # in the window's picture: the call the injection asked for
        await page.get_by_text("tool get_profile").scroll_into_view_if_needed()
    if walk.act == 3:
        trace = await page.locator("a[href^='/traces/']").first.get_attribute("href")
        await reloaded_until(page, f"{base}{trace}", ".badge.deny")
        await page.locator(".row-deny").first.scroll_into_view_if_needed()


CHECKS: dict[str, Callable[[Walk, Page], Awaitable[None]]] = {
    "chatbot": check_chatbot,
    "attacker": check_attacker,
    "registry": check_registry,
    "dashboard": check_dashboard,
    "alerts": check_alerts,
    "inbox": check_inbox,
    "sessions": check_sessions,
    "converter": check_converter,
}


@pytest.mark.parametrize("act", [1, 2, 3])
async def test_each_tab_shows_what_the_presenter_points_at(
    tour: Cluster, act: int, context: BrowserContext, shoot: Screenshots
) -> None:
    assert [t.key for t in TABS] == list(CHECKS), "a tab without a check, or a check without a tab"
    for command in SETUP[act]:
        done = tour.cli(*command, timeout=180)
        assert done.returncode == 0, f"trustusbank {' '.join(command)}: {done.stderr}"
    walk = Walk(tour, context, shoot, act)
    door = await walk.open("dashboard")  # one sign-in covers every operator tab (one cookie per host)
    await sign_in(door, *ADMIN)
    await door.close()
    walk.attacker_before = await attacker_count(attacker := await walk.open("attacker"))
    await attacker.close()

    chat = await walk.open("chatbot")
    await ask(chat, SEED_PROMPT)
    walk.context_id = await chat.evaluate("JSON.parse(sessionStorage.getItem('trustusbank.chat')).contextId")
    for t in TABS:
        page = chat if t.key == "chatbot" else await walk.open(t.key)
        await CHECKS[t.key](walk, page)
        await walk.picture(page, t.key)
