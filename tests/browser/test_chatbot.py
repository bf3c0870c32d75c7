"""The chatbot tab (seed port 18009): the question typed in, the answer and its tool calls shown."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Screenshots
from tests.browser.tabs import CHATBOT, PAGE_WAIT_MS, ask, tab_url
from tests.session_cluster import Cluster
from trustusbank.agents.scripted.money import fmt
from trustusbank.scenario.cluster import SEED_PROMPT, SUPPORT_BOT
from trustusbank.workloads.bank.seed_data import CUSTOMERS

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ALICE = next(c for c in CUSTOMERS if c["customer_id"] == "12345")


async def test_the_seed_prompt_is_answered_with_its_tool_call_chain(
    cluster: Cluster, page: Page, shoot: Screenshots
) -> None:
    await page.goto(tab_url(cluster, CHATBOT))
    await expect(page.locator("#agent")).to_have_text(SUPPORT_BOT, timeout=PAGE_WAIT_MS)
    await expect(page.locator("#summary")).to_have_text("No answer yet.")
    await shoot(page, "chatbot-empty")

    reply = await ask(page, SEED_PROMPT)

    balance = fmt(Decimal(str(ALICE["balance"])), str(ALICE["currency"]))
    await expect(reply).to_contain_text(f"Your balance is {balance} (about ")
    await expect(reply).to_contain_text("USD")
    await expect(page.locator("#conversation .bubble.user")).to_have_text([SEED_PROMPT])
    # The debug panel: the chain of the answer, in the order support-bot called the tools.
    chain = page.locator("#chain > ul.steps > li.step > .head .name")
    await expect(chain).to_have_text(["get_balance", "list_recent", "convert_currency"])
    await expect(page.locator("#chain li.step.error")).to_have_count(0)
    await expect(page.locator("#summary")).to_contain_text("completed · 3 call(s)")
    await shoot(page, "chatbot-answered")
