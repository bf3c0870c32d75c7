"""dex's role, driven over HTTP as a relying party drives it: discovery, the form, codes, ID tokens.

The test is the client: it sends its own PKCE challenge and nonce, reads the form the provider
serves, and presents codes at `/token` as a front door would, right and wrong.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.console.signin.world import ADMIN, AUDITOR, Clock, FormReader, location, query_of, serve_on, url_of
from trustusbank.console.signin import provider as idp
from trustusbank.console.signin.keyfiles import signin_dir, signing_key
from trustusbank.console.signin.pkce import new_verifier, s256
from trustusbank.workloads.serving import bind

CALLBACK = "http://127.0.0.1:9/oauth2/callback"  # never opened: the test reads the redirect
CLIENT = idp.Client("door", "door-secret", frozenset({CALLBACK}))


@dataclass
class Flow:
    http: httpx.AsyncClient
    provider: idp.Provider
    url: str
    clock: Clock
    state_dir: Path

    def params(self, verifier: str, **changes: str) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": CLIENT.client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid email groups",
            "state": "the-state",
            "nonce": "the-nonce",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        params.update(changes)
        return {k: v for k, v in params.items() if v}

    async def form(self, verifier: str) -> dict[str, str]:
        page = await self.http.get(f"{self.url}/auth", params=self.params(verifier))
        assert page.status_code == 200, page.text
        reader = FormReader()
        reader.feed(page.text)
        assert reader.action == "/auth/login"
        return reader.fields

    async def login(self, fields: dict[str, str], who: tuple[str, str]) -> httpx.Response:
        form = {**fields, "login": who[0], "password": who[1]}
        return await self.http.post(f"{self.url}/auth/login", data=form)

    async def code(self, verifier: str, who: tuple[str, str] = ADMIN) -> str:
        answer = await self.login(await self.form(verifier), who)
        assert answer.status_code == 303, answer.text
        back = query_of(location(answer))
        assert back["state"] == "the-state"
        return back["code"]

    async def token(self, code: str, verifier: str | None, secret: str = CLIENT.secret) -> httpx.Response:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
        if verifier is not None:
            form["code_verifier"] = verifier
        return await self.http.post(f"{self.url}/token", data=form, auth=(CLIENT.client_id, secret))


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[Flow]:
    sock = bind("127.0.0.1", 0)
    clock = Clock()
    state = tmp_path / "state"
    provider = idp.Provider(url_of(sock), signing_key(signin_dir(state)), [CLIENT], clock=clock)
    async with (
        serve_on(sock, idp.create_app(provider)),
        httpx.AsyncClient(trust_env=False, timeout=30) as http,
    ):
        yield Flow(http, provider, url_of(sock), clock, state)


async def test_discovery_and_the_jwks_publish_the_public_key_only(flow: Flow) -> None:
    doc = (await flow.http.get(f"{flow.url}/.well-known/openid-configuration")).json()
    keys = (await flow.http.get(doc["jwks_uri"])).json()
    assert doc["issuer"] == flow.url
    assert (doc["authorization_endpoint"], doc["token_endpoint"]) == (f"{flow.url}/auth", f"{flow.url}/token")
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    [key] = keys["keys"]
    assert (key["kty"], key["alg"], key["use"], key["kid"]) == ("RSA", "RS256", "sig", flow.provider.key.kid)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_a_code_buys_one_rs256_id_token_with_the_users_claims(flow: Flow) -> None:
    verifier = new_verifier()
    answer = await flow.token(await flow.code(verifier, AUDITOR), verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    jwks = KeySet.import_key_set((await flow.http.get(f"{flow.url}/keys")).json())
    token = jwt.decode(body["id_token"], jwks, algorithms=["RS256"])
    claims = token.claims
    assert token.header["kid"] == flow.provider.key.kid
    assert (claims["iss"], claims["aud"], claims["nonce"]) == (flow.url, "door", "the-nonce")
    assert (claims["email"], claims["groups"]) == ("auditor@trustusbank.local", ["auditors"])
    assert claims["exp"] - claims["iat"] == idp.ID_TOKEN_SECONDS
    assert body["token_type"] == "Bearer"


async def test_a_code_is_single_use(flow: Flow, caplog: pytest.LogCaptureFixture) -> None:
    verifier = new_verifier()
    code = await flow.code(verifier)
    first = await flow.token(code, verifier)
    replayed = await flow.token(code, verifier)
    assert first.status_code == 200
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    assert "unknown, expired or used already" in caplog.text


async def test_pkce_is_required_at_the_token_endpoint_and_a_failed_try_spends_the_code(flow: Flow) -> None:
    verifier = new_verifier()
    code = await flow.code(verifier)
    missing = await flow.token(code, None)
    after = await flow.token(code, verifier)  # the right verifier, too late
    other = await flow.code(verifier)
    wrong = await flow.token(other, new_verifier())
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_grant")
    assert "code_verifier is missing" in missing.json()["error_description"]
    assert after.json()["error"] == "invalid_grant"
    assert "does not match the code_challenge" in wrong.json()["error_description"]


async def test_pkce_and_a_nonce_are_required_at_the_authorization_endpoint(flow: Flow) -> None:
    verifier = new_verifier()
    answers = [
        await flow.http.get(f"{flow.url}/auth", params=flow.params(verifier, code_challenge="")),
        await flow.http.get(f"{flow.url}/auth", params=flow.params(verifier, code_challenge_method="plain")),
        await flow.http.get(f"{flow.url}/auth", params=flow.params(verifier, nonce="")),
        await flow.http.get(f"{flow.url}/auth", params=flow.params(verifier, scope="email")),
    ]
    backs = [query_of(location(a)) for a in answers]
    assert all(location(a).startswith(CALLBACK + "?") for a in answers)
    assert [b["error"] for b in backs] == ["invalid_request"] * 3 + ["invalid_scope"]
    assert all(b["state"] == "the-state" for b in backs)
    assert "PKCE" in backs[0]["error_description"]
    assert not flow.provider.logins


async def test_an_unknown_client_or_return_address_is_a_page_not_a_redirect(flow: Flow) -> None:
    verifier = new_verifier()
    stranger = await flow.http.get(f"{flow.url}/auth", params=flow.params(verifier, client_id="stranger"))
    elsewhere = await flow.http.get(
        f"{flow.url}/auth", params=flow.params(verifier, redirect_uri="http://127.0.0.1:9/evil")
    )
    assert (stranger.status_code, elsewhere.status_code) == (400, 400)
    assert "location" not in stranger.headers
    assert "location" not in elsewhere.headers
    assert "is not registered" in elsewhere.text


async def test_a_wrong_password_is_a_clear_page_and_a_log_line_without_the_password(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    verifier = new_verifier()
    fields = await flow.form(verifier)
    wrong = await flow.login(fields, ("admin@kagent.local", "hunter2-not-it"))
    unknown = await flow.login(fields, ("nobody@kagent.local", "admin"))
    right = await flow.login(fields, ADMIN)  # the same form, again: a typo is not the end
    assert wrong.status_code == 401
    assert "Wrong e-mail or password." in wrong.text
    assert 'value="admin@kagent.local"' in wrong.text  # kept, the password not
    assert "hunter2" not in wrong.text
    assert unknown.status_code == 401
    assert right.status_code == 303
    assert "login refused for 'admin@kagent.local': wrong e-mail or password (attempt 1 of 5)" in caplog.text
    assert "hunter2" not in caplog.text


async def test_five_wrong_passwords_end_the_form(flow: Flow) -> None:
    fields = await flow.form(new_verifier())
    guesses = [("admin@kagent.local", f"guess-{n}") for n in range(idp.MAX_ATTEMPTS)]
    answers = [await flow.login(fields, guess) for guess in guesses]
    last = await flow.login(fields, ADMIN)
    assert [a.status_code for a in answers] == [401] * (idp.MAX_ATTEMPTS - 1) + [403]
    assert last.status_code == 400
    assert "This sign-in has expired" in last.text


async def test_the_form_is_csrf_checked_against_this_browsers_cookie(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    fields = await flow.form(new_verifier())
    async with httpx.AsyncClient(trust_env=False) as elsewhere:  # another browser: no cookie
        posted_from_elsewhere = await elsewhere.post(
            f"{flow.url}/auth/login", data={**fields, "login": ADMIN[0], "password": ADMIN[1]}
        )
    tampered = await flow.login({**fields, "csrf": "x" * 43}, ADMIN)
    honest = await flow.login(fields, ADMIN)
    assert (posted_from_elsewhere.status_code, tampered.status_code) == (403, 403)
    assert "CSRF" in posted_from_elsewhere.text
    assert honest.status_code == 303
    assert "the CSRF check failed" in caplog.text


async def test_the_login_page_cannot_be_framed_and_posts_only_to_provider_and_door(flow: Flow) -> None:
    page = await flow.http.get(f"{flow.url}/auth", params=flow.params(new_verifier()))
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self' http://127.0.0.1:9;" in policy
    assert page.headers["x-frame-options"] == "DENY"
    [cookie] = [c for c in page.headers.get_list("set-cookie") if c.startswith(idp.CSRF_COOKIE)]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/auth" in cookie


async def test_a_code_expires_and_an_unauthenticated_client_spends_nothing(flow: Flow) -> None:
    verifier = new_verifier()
    code = await flow.code(verifier)
    bad_secret = await flow.token(code, verifier, secret="guessed")
    kept = await flow.token(code, verifier)
    late = await flow.code(verifier)
    flow.clock.offset = idp.CODE_SECONDS + 1
    expired = await flow.token(late, verifier)
    assert bad_secret.status_code == 401
    assert bad_secret.json()["error"] == "invalid_client"
    assert kept.status_code == 200
    assert expired.json()["error"] == "invalid_grant"
    assert "expired" in expired.json()["error_description"]


async def test_the_signing_key_is_made_once_owner_only_and_kept(flow: Flow) -> None:
    folder = signin_dir(flow.state_dir)
    mode = stat.S_IMODE(os.stat(folder / "signing-key.pem").st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert signing_key(folder).kid == flow.provider.key.kid
