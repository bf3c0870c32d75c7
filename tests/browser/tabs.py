"""The presenter's tabs, at this cluster's addresses, and what a customer does in the chatbot's.

A tab is named by the seed's local port. The customer's and the attacker's (18009, 18011:
runtime.portforward.SEED_PORTS says which pod's port each forwards to) are reached at that
pod's app address, as the port-forward itself reaches it: the seed's ports may be taken on a
laptop, and the session cluster forwards none. The operator's tabs (18002 alerts, 18012 SOC
inbox, 18006 agent registry, as the console's own) are the console's pages, behind its
sign-in, at the addresses the cluster's status gives them (`tests.browser.signin`).
"""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect

from tests.session_cluster import Cluster
from trustusbank.console.tabs import TABS, Tab, url_of
from trustusbank.runtime.portforward import SEED_PORTS

CHATBOT, ATTACKER, SOC_INBOX, ALERTS, REGISTRY = 18009, 18011, 18012, 18002, 18006

# Upper bounds on waits, not durations: a reply runs three tool calls through the mesh, and an
# alert is evaluated, grouped and mailed; on 2 busy cores either can take a while.
REPLY_WAIT_MS = 60_000
PAGE_WAIT_MS = 30_000


def tab_url(cluster: Cluster, seed_port: int) -> str:
    """The URL of the tab the seed opens at http://127.0.0.1:<seed_port>."""
    return url_for(cluster, next(t for t in TABS if t.port == seed_port))  # 18006: the registry's list


def url_for(cluster: Cluster, tab: Tab) -> str:
    """Where this cluster serves `tab`: the console's page for an operator tab, else the
    forwarded pod itself, at the tab's path."""
    if tab.source.startswith("console:"):
        url = url_of(tab, cluster.status())
        assert url, f"the cluster's status names no console page {tab.source}"
        return url
    [(namespace, deployment, port)] = [key for key, local in SEED_PORTS.items() if local == tab.port]
    pods = [p for p in cluster.topology.pods if (p.namespace, p.deployment) == (namespace, deployment)]
    assert pods, f"no pod of {namespace}/{deployment} in the running cluster"
    return f"http://{pods[0].app_ip}:{port}{tab.path}"


async def ask(chat: Page, prompt: str) -> Locator:
    """Type `prompt` into the chatbot, press Send, and return the reply's bubble once it is shown.

    Send is enabled only once the page has its endpoint (a click before that would be lost). The
    answer is the next agent or problem bubble, so a tab that already holds a conversation works
    too, and a failed request fails the test when it is shown, not at the end of the wait."""
    answers = chat.locator("#conversation .bubble.agent, #conversation .bubble.problem")
    before = await answers.count()
    await chat.get_by_label("Your message").press_sequentially(prompt)
    await chat.get_by_role("button", name="Send").click()
    await expect(answers.nth(before)).to_be_visible(timeout=REPLY_WAIT_MS)
    problems = chat.locator("#conversation .bubble.problem")
    assert await problems.count() == 0, await problems.all_inner_texts()
    return answers.nth(before)
