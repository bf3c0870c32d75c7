"""18007 on the embedded cluster: a person's message to an agent, judged on their groups.

Each person signs in through the provider's form (as in a browser), opens support-bot's page on
the sessions console and sends it a message with the page's form. The console sends it to the
agent's pod with their ID token; the agent verifies the token against the provider's keys (the
file `up` gave its pod) and matches its `groups` against the UserGroup subjects of
deploy/07-agents/access-policies.yaml: admins may call support-bot, auditors may not.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx

from tests.console.signin.world import ADMIN, AUDITOR, sign_in
from tests.system.conftest import Cluster

AGENTS = "trustusbank-bank-agents"
PROMPT = "I am customer 12345. Please check my balance."
POLICY = f"{AGENTS}/support-bot-callers"


class Forms(HTMLParser):
    """Every form's action and method, and its fields' names."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.forms.append((found.get("action") or "", found.get("method") or "get", []))
        elif tag in ("input", "textarea") and self.forms and found.get("name"):
            self.forms[-1][2].append(str(found["name"]))


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def sessions_url(cluster: Cluster) -> str:
    [page] = [p for p in cluster.status()["console"]["pages"] if p["name"] == "sessions"]
    return str(page["url"]).rstrip("/")


async def send_as(who: tuple[str, str], base: str) -> tuple[httpx.Response, httpx.Response]:
    """Sign in as `who` on support-bot's page, and send the page's form."""
    async with httpx.AsyncClient(trust_env=False, timeout=180) as browser:
        page = await sign_in(browser, f"{base}/agents/{AGENTS}/support-bot", who)
        assert page.status_code == 200, page.text[:2000]
        forms = Forms()
        forms.feed(page.text)
        [(action, method, fields)] = [f for f in forms.forms if f[0].endswith("/messages")]
        assert (method, fields) == ("post", ["message"])
        sent = await browser.post(f"{base}{action}", data={"message": PROMPT})
    return page, sent


def agent_log(cluster: Cluster) -> list[dict[str, object]]:
    lines = []
    for path in [*cluster.files.logs.glob(f"agent-{AGENTS}-support-bot.jsonl"), *_pod_logs(cluster)]:
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def _pod_logs(cluster: Cluster) -> list[Path]:
    return list(cluster.files.root.glob(f"pods/{AGENTS}/support-bot-*/**/agent-{AGENTS}-support-bot.jsonl"))


async def test_an_admins_message_is_answered_and_an_auditors_refused_by_the_access_policy(
    cluster: Cluster,
) -> None:
    base = sessions_url(cluster)

    _, answered = await send_as(ADMIN, base)
    _, refused = await send_as(AUDITOR, base)

    assert answered.status_code == 200, text_of(answered.text)[:2000]
    assert 'class="msg agent"' in answered.text
    said = text_of(answered.text)
    assert "admin@kagent.local" in said
    assert PROMPT in said
    assert "refused" not in said
    assert re.search(r'href="/sessions/[^"]+"', answered.text)  # the conversation, on the sessions pages

    assert refused.status_code == 403, text_of(refused.text)[:2000]
    shown = text_of(refused.text)
    assert f"AccessPolicy {POLICY}" in shown
    assert f"AccessPolicy {POLICY} denies auditor@trustusbank.local (groups auditors)" in shown
    assert 'class="msg agent"' not in refused.text

    denied = cluster.wait_for(
        lambda: [r for r in agent_log(cluster) if r.get("user.email") == "auditor@trustusbank.local"],
        what="support-bot's log line for the auditor's refusal",
    )
    assert denied[-1]["policy"] == POLICY
    assert denied[-1]["user.groups"] == ["auditors"]
    assert not [r for r in agent_log(cluster) if r.get("user.email") == "admin@kagent.local"]
