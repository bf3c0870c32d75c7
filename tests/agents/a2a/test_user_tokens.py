"""A person's ID token at the agent's door: its groups are what UserGroup subjects match.

The tokens are the sign-in provider's own (`Provider.id_token`, the code the console's sign-in
issues them with), or that token changed as an attacker would change it; the agent is served on
127.0.0.1 and called over HTTP, as the console calls it. The caller resolver knows no workload
at the test's address, as the agent knows none at the console's: the token is all it has.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types import a2a_pb2 as a2a
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.agents.a2a.support import ISSUER, Issuer, PlanModel, agent_spec, answer, reply_text, running_agent
from trustusbank.agents.a2a.access_guard import NO_PROVIDER, TOKEN_REFUSED, USER_TOKEN
from trustusbank.agents.a2a.user_tokens import TrustedProvider
from trustusbank.console.signin.users import USERS
from trustusbank.manifests.kagent.spec import AccessRule
from trustusbank.paths import LOGS_ENV

NS = "trustusbank-bank-agents"
AGENT = f"{NS}/support-bot"
CLIENT = "trustusbank-console"
ADMIN, AUDITOR, CUSTOMER = USERS
CONSOLE_OPERATORS = AccessRule(policy=f"{NS}/support-bot-callers", action="ALLOW", user_groups=("admins",))
NO_AUDITORS = AccessRule(policy=f"{NS}/auditors-read-only", action="DENY", user_groups=("auditors",))
EVERYONE = AccessRule(policy=f"{NS}/everyone", action="ALLOW", principals=("*",))


@pytest.fixture(scope="module")
def idp() -> Issuer:
    return Issuer(RSAKey.generate_key(2048, {"use": "sig", "alg": "RS256"}, auto_kid=True))


def send(url: str, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    body = {
        "jsonrpc": "2.0",
        "id": "console-1",
        "method": "message/send",
        "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "messageId": "m1"}},
    }
    return httpx.post(f"{url}/", json=body, headers=headers, timeout=30)


def denial_log(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / f"agent-{NS}-support-bot.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_an_admins_token_is_answered_through_the_a2a_client(
    idp: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    spec = agent_spec(access=(CONSOLE_OPERATORS, NO_AUDITORS), access_enforced=True)
    bearer = {"Authorization": f"Bearer {idp.token(ADMIN)}"}
    model = PlanModel(lambda _: answer("hello admin"))
    with running_agent(spec, model, lambda _: None, idp.trusted()) as agent:
        async with httpx.AsyncClient(headers=bearer, timeout=30) as http:
            client = await create_client(f"{agent.url}/", ClientConfig(httpx_client=http, streaming=False))
            message = a2a.Message(role=a2a.Role.ROLE_USER, message_id="m-admin", parts=[a2a.Part(text="hi")])
            events = [e async for e in client.send_message(a2a.SendMessageRequest(message=message))]
            task = await client.get_task(a2a.GetTaskRequest(id=events[-1].task.id))
    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    assert reply_text(task) == "hello admin"
    assert denial_log(tmp_path) == []


def _forged(idp: Issuer) -> str:
    """The admin's token, its claims kept, signed by another key under the provider's kid."""
    other = RSAKey.generate_key(2048)
    claims = dict(jwt.decode(idp.token(ADMIN), idp.key).claims)
    return jwt.encode({"alg": "RS256", "kid": idp.key.kid, "typ": "JWT"}, claims, other)


def _elevated(idp: Issuer) -> str:
    """The auditor's token with its groups changed to admins, the signature left as it was."""
    header, _, signature = idp.token(AUDITOR).split(".")
    admin_body = idp.token(ADMIN).split(".")[1]
    return f"{header}.{admin_body}.{signature}"


def _elsewhere(idp: Issuer, **changes: object) -> str:
    return Issuer(idp.key, **changes).token(ADMIN)  # type: ignore[arg-type]


CASES = {
    # name: (token maker, the agent's rules, allowed?, policy shown, words in the reason)
    "admins-allowed": (lambda i: i.token(ADMIN), (CONSOLE_OPERATORS,), True, "", ""),
    "auditors-not-allowed": (
        lambda i: i.token(AUDITOR), (CONSOLE_OPERATORS,), False, f"{NS}/support-bot-callers",
        "no ALLOW rule names the caller",
    ),
    "customers-not-allowed": (
        lambda i: i.token(CUSTOMER), (CONSOLE_OPERATORS,), False, f"{NS}/support-bot-callers",
        "no ALLOW rule names the caller",
    ),
    "deny-names-the-group": (
        lambda i: i.token(AUDITOR), (EVERYONE, NO_AUDITORS), False, f"{NS}/auditors-read-only",
        f"AccessPolicy {NS}/auditors-read-only denies groups auditors",
    ),
    "deny-spares-other-groups": (lambda i: i.token(ADMIN), (EVERYONE, NO_AUDITORS), True, "", ""),
    "forged-signature": (_forged, (CONSOLE_OPERATORS,), False, USER_TOKEN, "signature does not verify"),
    "groups-edited": (_elevated, (CONSOLE_OPERATORS,), False, USER_TOKEN, "signature does not verify"),
    "another-issuer": (
        lambda i: _elsewhere(i, issuer="http://127.0.0.1:5556"), (CONSOLE_OPERATORS,), False, USER_TOKEN,
        "not for this client",
    ),
    "another-audience": (
        lambda i: _elsewhere(i, audience="another-app"), (CONSOLE_OPERATORS,), False, USER_TOKEN,
        "not for this client",
    ),
    "expired": (
        lambda i: _elsewhere(i, offset=-2 * 3600), (CONSOLE_OPERATORS,), False, USER_TOKEN, "has expired"
    ),
    "not-a-jwt": (lambda _: "not.a-token", (CONSOLE_OPERATORS,), False, USER_TOKEN, "cannot be read"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_the_guard_judges_the_token_and_its_groups(
    case: str, idp: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    make, rules, allowed, policy, words = CASES[case]
    token = make(idp)
    spec = agent_spec(access=rules, access_enforced=True)
    with running_agent(spec, PlanModel(lambda _: answer("answered")), lambda _: None, idp.trusted()) as agent:
        response = send(agent.url, f"Bearer {token}")

    if allowed:
        assert response.status_code == 200, response.text
        assert denial_log(tmp_path) == []
        return
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == -32001
    assert error["data"]["policy"] == policy
    assert words in error["data"]["reason"]
    [line] = denial_log(tmp_path)
    assert line["policy"] == policy
    assert words in str(line["reason"])
    assert line["jsonrpc.method"] == "message/send"
    if policy == USER_TOKEN:
        assert str(line["reason"]).startswith(TOKEN_REFUSED)
        assert "user.email" not in line  # an unverified token names nobody
    else:
        email = jwt.decode(token, idp.key).claims["email"]
        assert line["user.email"] == error["data"]["user"] == email
        assert error["message"].startswith(f"AccessPolicy {policy} denies {email} (groups ")


@pytest.mark.parametrize(
    ("authorization", "trusted", "words"),
    [
        ("Bearer {token}", False, NO_PROVIDER),
        ("Basic YWRtaW46YWRtaW4=", True, "not a Bearer token"),
        ("Bearer", True, "not a Bearer token"),
    ],
)
def test_a_token_the_agent_cannot_verify_is_refused_not_ignored(
    authorization: str,
    trusted: bool,
    words: str,
    idp: Issuer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even where the caller's workload identity alone would be let in."""
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    spec = agent_spec(access=(EVERYONE,), access_enforced=True)
    who = "cluster.local/ns/trustusbank-bank-frontend/sa/chatbot"
    with running_agent(
        spec, PlanModel(lambda _: answer("no")), lambda _: who, idp.trusted() if trusted else None
    ) as agent:
        without = send(agent.url, None)
        refused = send(agent.url, authorization.format(token=idp.token(ADMIN)))
    assert without.status_code == 200
    assert refused.status_code == 403
    assert words in refused.json()["error"]["data"]["reason"]
    [line] = denial_log(tmp_path)
    assert line["policy"] == USER_TOKEN
    assert line["source.principal"] == who


def test_without_a_token_a_deny_naming_groups_still_fails_closed(
    idp: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No token: no end-user identity, so a group DENY cannot be ruled out (the current rule)."""
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    spec = agent_spec(access=(EVERYONE, NO_AUDITORS), access_enforced=True)
    who = "cluster.local/ns/trustusbank-bank-frontend/sa/chatbot"
    with running_agent(spec, PlanModel(lambda _: answer("no")), lambda _: who, idp.trusted()) as agent:
        response = send(agent.url, None)
    assert response.status_code == 403
    assert response.json()["error"]["data"]["policy"] == f"{NS}/auditors-read-only"
    assert "cannot be verified" in response.json()["error"]["data"]["reason"]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"issuer": ISSUER, "audience": CLIENT, "jwks": {"keys": []}}, "No keys"),
        ({"issuer": ISSUER, "audience": CLIENT, "jwks": "keys"}, "JWKS cannot be read"),
        ({"issuer": "", "audience": CLIENT, "jwks": {"keys": []}}, "non-empty"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_a_provider_file_that_cannot_be_used_is_said(document: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        TrustedProvider.from_document(document)
