"""A person's message to an agent from the console: sent with their token, answered or refused.

The agent is the real A2A app on 127.0.0.1, guarded by an AccessPolicy that admits group admins,
given the provider's keys; the tokens are the provider's own. The console's sender reaches it
at its pod address as it does on a cluster, and the page shows the answer or the refusal.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.agents.a2a.support import Issuer, PlanModel, agent_spec, answer, running_agent
from tests.serving import refused_url, served
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Pod, PodPort
from trustusbank.console.agent_chat import Exchange, rpc_url, send
from trustusbank.console.agents import Agent
from trustusbank.console.chat_pages import exchange_page
from trustusbank.console.sessions import create_app
from trustusbank.console.signin.users import USERS
from trustusbank.manifests.kagent.spec import AccessRule
from trustusbank.paths import LOGS_ENV

NS = "trustusbank-bank-agents"
ADMIN, AUDITOR, _ = USERS
OPERATORS = AccessRule(policy=f"{NS}/support-bot-callers", action="ALLOW", user_groups=("admins",))


@pytest.fixture(scope="module")
def idp() -> Issuer:
    return Issuer(RSAKey.generate_key(2048, {"use": "sig", "alg": "RS256"}, auto_kid=True))


def at(url: str) -> Agent:
    """The agent as the console finds it: a pod, at an app address and port."""
    port = int(url.rsplit(":", 1)[1])
    pod = Pod("support-bot-0", NS, "support-bot", "support-bot", {}, "worker", "127.0.0.1", "127.0.0.1",
              [PodPort("http", port)], "agent")  # fmt: skip
    return Agent(NS, "support-bot", pod=pod)


async def test_the_message_goes_with_the_persons_token_and_the_agent_judges_it(
    idp: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    asked: list[str] = []

    def reply(request: object) -> object:
        asked.append(str(request))
        return answer("your balance is 1,234.56 GBP")

    spec = agent_spec(access=(OPERATORS,), access_enforced=True)
    with running_agent(spec, PlanModel(reply), lambda _: None, idp.trusted()) as agent:  # type: ignore[arg-type]
        target = at(agent.url)
        admin = await send(target, "What is my balance?", f"Bearer {idp.token(ADMIN)}")
        again = await send(target, "And in USD?", f"Bearer {idp.token(ADMIN)}", admin.context_id)
        auditor = await send(target, "What is my balance?", f"Bearer {idp.token(AUDITOR)}")
        nobody = await send(target, "What is my balance?", None)

    assert rpc_url(target) == f"{agent.url}/"
    assert (admin.answered, admin.text) == (True, "your balance is 1,234.56 GBP")
    assert admin.context_id
    assert again.answered
    assert again.context_id == admin.context_id  # the same conversation
    assert len(asked) == 2  # the model saw the admin's two messages, nobody else's
    assert (auditor.answered, auditor.status, auditor.policy) == (False, 403, f"{NS}/support-bot-callers")
    assert auditor.text.startswith(f"AccessPolicy {NS}/support-bot-callers denies auditor@trustusbank.local")
    assert (nobody.answered, nobody.status, nobody.policy) == (False, 403, "identity-required")
    log = [json.loads(line) for line in (tmp_path / f"agent-{NS}-support-bot.jsonl").read_text().splitlines()]
    assert [(r.get("user.email"), r["jsonrpc.method"]) for r in log] == [
        ("auditor@trustusbank.local", "SendMessage"),  # A2A 1.0's name for message/send
        (None, "SendMessage"),
    ]


async def test_an_agent_that_is_not_there_is_said() -> None:
    sock, url = refused_url()
    with sock:
        exchange = await send(at(url), "hello", None)
    assert not exchange.answered
    assert exchange.text.startswith("the agent could not be reached")


def test_the_refusal_page_names_the_policy_and_escapes_what_the_agent_said() -> None:
    policy = f"{NS}/support-bot-callers"
    refused = Exchange("<b>hi</b>", False, "AccessPolicy <x> denies you", "ctx-1", 403, policy)
    document, csp = exchange_page(f"{NS}/support-bot", refused, "auditor@trustusbank.local").render()

    assert "<b>hi</b>" not in document
    assert "&lt;b&gt;hi&lt;/b&gt;" in document
    assert f'<strong class="policy">{NS}/support-bot-callers</strong>' in document
    assert "HTTP 403: AccessPolicy &lt;x&gt; denies you" in document
    assert 'name="context" value="ctx-1"' in document  # the form continues the conversation
    assert "script" not in document.lower()
    assert "form-action 'self'" in csp


@pytest.mark.parametrize(
    ("headers", "form", "status", "said"),
    [
        ({"Origin": "http://evil.example"}, {"message": "hi"}, 403, "not sent from this console"),
        ({"Sec-Fetch-Site": "cross-site"}, {"message": "hi"}, 403, "not sent from this console"),
        ({}, {"message": "   "}, 400, "A message is 1 to"),
        ({}, {"message": "x" * 5000}, 400, "A message is 1 to"),
        ({}, {"message": "hi"}, 404, "No agent trustusbank-bank-agents/support-bot runs"),
    ],
)
def test_the_form_refuses_other_sites_empty_or_long_messages_and_unknown_agents(
    headers: dict[str, str], form: dict[str, str], status: int, said: str, tmp_path: Path
) -> None:
    files = ClusterFiles(tmp_path / "state")  # no cluster: no agent runs
    with served(lambda _: create_app(files)) as server:
        response = httpx.post(f"{server.url}/agents/{NS}/support-bot/messages", data=form, headers=headers)
    assert response.status_code == status
    assert said in html.unescape(re.sub(r"<[^>]+>", "", response.text))
