"""oauth2-proxy's role, in front of an app that says what it was told, with the real provider behind.

Each refusal is driven where it happens in life: a token changed on the back channel (forged,
for another client, from another sign-in), a provider whose clock is hours behind, a callback
replayed or carried to another browser. Each is a clear page and a log line, and no session.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from tests.console.signin.world import (
    ADMIN,
    AUDITOR,
    CLIENT_ID,
    location,
    login_form,
    query_of,
    resign,
    sign_in,
    submit,
    world,
)
from tests.serving import refused_url
from trustusbank.console.signin.cookies import Sealer
from trustusbank.console.signin.frontdoor import CALLBACK, SESSION_SECONDS, SIGN_OUT, _local
from trustusbank.console.signin.keyfiles import signin_dir, signing_key
from trustusbank.console.signin.provider import ID_TOKEN_SECONDS
from trustusbank.oidc import key_set, verify_id_token

COOKIE = "_oauth2_proxy"


async def test_the_whole_flow_signs_in_and_the_app_sees_the_user_and_nothing_the_browser_claimed(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        to_provider = await w.browser.get(f"{w.door_url}/reports/7?from=now-5m")
        asked = query_of(location(to_provider))
        form = await login_form(w.browser, f"{w.door_url}/reports/7?from=now-5m")
        sent = await submit(w.browser, form, *AUDITOR)
        callback = await w.browser.get(location(sent))
        landed = await w.browser.get(location(callback), headers={"X-Forwarded-Email": "admin@kagent.local"})
        spoofed = await w.browser.get(
            f"{w.door_url}/x",
            headers={"X-Forwarded-Groups": "admins", "X-Auth-Request-Email": "admin@kagent.local"},
        )
    assert to_provider.status_code == 302
    assert location(to_provider).startswith(f"{w.issuer}/auth?")
    assert (asked["response_type"], asked["code_challenge_method"]) == ("code", "S256")
    assert asked["redirect_uri"] == w.door_url + CALLBACK
    assert len(asked["state"]) >= 43
    assert len(asked["nonce"]) >= 43
    assert location(sent).startswith(w.door_url + CALLBACK + "?code=")
    assert location(callback) == f"{w.door_url}/reports/7?from=now-5m"
    [session] = [c for c in callback.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")]
    assert "HttpOnly" in session
    assert "SameSite=lax" in session
    assert "Path=/" in session
    max_age = int(re.search(r"Max-Age=(\d+)", session).group(1))  # type: ignore[union-attr]
    assert ID_TOKEN_SECONDS - 5 <= max_age <= min(ID_TOKEN_SECONDS, SESSION_SECONDS)  # the token's life
    seen = landed.json()
    assert (seen["path"], seen["query"]) == ("/reports/7", "from=now-5m")
    assert seen["user"] == "auditor@trustusbank.local"
    assert seen["forwarded"]["x-forwarded-email"] == "auditor@trustusbank.local"
    assert seen["forwarded"]["x-forwarded-groups"] == "auditors"
    assert "group:auditors" in seen["auth"]
    assert spoofed.json()["forwarded"]["x-forwarded-groups"] == "auditors"
    assert "x-auth-request-email" not in spoofed.json()["forwarded"]


async def test_the_app_is_handed_the_persons_id_token_and_never_one_the_browser_sent(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        landed = await sign_in(w.browser, f"{w.door_url}/agents", ADMIN)
        forged = await w.browser.get(f"{w.door_url}/x", headers={"Authorization": "Bearer forged.by.browser"})
        basic = await w.browser.get(f"{w.door_url}/x", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        keys = (await w.browser.get(f"{w.issuer}/keys")).json()
        cookie = w.browser.cookies[COOKIE]
        w.door_clock.offset = ID_TOKEN_SECONDS + 1  # the token has expired: so has the session
        later = await w.browser.get(f"{w.door_url}/x")

    [handed] = landed.json()["authorization"]
    scheme, _, token = handed.partition(" ")
    assert scheme == "Bearer"
    claims = verify_id_token(token, key_set(keys), issuer=w.issuer, audience=CLIENT_ID, now=int(time.time()))
    assert (claims["email"], claims["groups"]) == ("admin@kagent.local", ["admins"])
    assert forged.json()["authorization"] == [handed]  # the browser's is gone, the door's is there
    assert basic.json()["authorization"] == [handed]
    assert len(cookie) < 3000  # a browser keeps cookies up to 4096 bytes: room to spare
    assert later.status_code == 302
    assert location(later).startswith(f"{w.issuer}/auth?")


async def test_without_a_session_only_healthz_answers_and_a_post_is_refused(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        health = await w.browser.get(f"{w.door_url}/healthz")
        posted = await w.browser.post(f"{w.door_url}/api/panels/1", content=b"{}")
        page = await w.browser.get(f"{w.door_url}/api/panels/1")
    assert (health.status_code, health.text) == (200, "ok")
    assert posted.status_code == 401
    assert page.status_code == 302
    assert location(page).startswith(f"{w.issuer}/auth?")


def provider_key(tmp_path: Path) -> RSAKey:
    """The key the world's provider will sign with (made here first, kept under its state dir)."""
    return signing_key(signin_dir(tmp_path / "state"))


async def refused(tmp_path: Path, tamper: Callable[[str], str], caplog: pytest.LogCaptureFixture) -> str:
    """Sign in through a chain whose back channel runs `tamper`: the door's page, after it is checked
    that no session came of it."""
    async with world(tmp_path, tamper=tamper) as w:
        form = await login_form(w.browser, f"{w.door_url}/")
        sent = await submit(w.browser, form, *ADMIN)
        callback = await w.browser.get(location(sent))
        after = await w.browser.get(f"{w.door_url}/")
    assert callback.status_code == 403, callback.text
    assert not [c for c in callback.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")]
    assert after.status_code == 302  # still no session: back to the provider
    assert "Sign-in refused" in callback.text
    assert "sign-in refused at" in caplog.text
    return callback.text


async def test_a_token_signed_by_another_key_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real, forger = provider_key(tmp_path), RSAKey.generate_key(2048)

    def forge(token: str) -> str:  # the provider's kid, another key's signature
        return resign(token, real, forger, kid=real.kid, email="attacker@evil.example")

    page = await refused(tmp_path, forge, caplog)
    assert "signature does not verify" in page


async def test_a_token_naming_a_key_the_provider_does_not_publish_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = provider_key(tmp_path)
    forger = RSAKey.generate_key(2048, auto_kid=True)
    page = await refused(tmp_path, lambda t: resign(t, real, forger), caplog)
    assert "a key the provider does not publish" in page


async def test_a_token_for_another_client_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = provider_key(tmp_path)
    page = await refused(tmp_path, lambda t: resign(t, real, real, aud="another-client"), caplog)
    assert "not for this sign-in" in page
    assert "aud" in page


async def test_an_expired_token_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with world(tmp_path) as w:
        w.provider_clock.offset = -2 * 3600  # the provider's clock two hours behind: its tokens are old
        form = await login_form(w.browser, f"{w.door_url}/")
        sent = await submit(w.browser, form, *ADMIN)
        callback = await w.browser.get(location(sent))
    assert callback.status_code == 403
    assert "the ID token has expired" in callback.text
    assert "sign-in refused at" in caplog.text


async def test_a_token_from_another_sign_in_is_refused_by_its_nonce(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    earlier: list[str] = []

    def replay(token: str) -> str:  # the first token issued, every time
        earlier.append(token)
        return earlier[0]

    async with world(tmp_path, tamper=replay) as w:
        first = await sign_in(w.browser, f"{w.door_url}/")
        async with w.browser_like() as other:
            form = await login_form(other, f"{w.door_url}/")
            sent = await submit(other, form, *AUDITOR)
            second = await other.get(location(sent))
    assert first.json()["user"] == "admin@kagent.local"
    assert second.status_code == 403
    assert "nonce" in second.text
    assert len(earlier) == 2


async def test_a_replayed_code_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with world(tmp_path) as w:
        form = await login_form(w.browser, f"{w.door_url}/")
        callback_url = location(await submit(w.browser, form, *ADMIN))
        kept = dict(w.browser.cookies.items())  # the sign-in cookie, as a thief would keep it
        first = await w.browser.get(callback_url)
        async with w.browser_like() as thief:
            for name, value in kept.items():
                thief.cookies.set(name, value, domain="127.0.0.1")
            replay = await thief.get(callback_url)
            after = await thief.get(f"{w.door_url}/")
    assert first.status_code == 302
    assert replay.status_code == 403
    assert "the provider refused the code: invalid_grant" in replay.text
    assert after.status_code == 302  # the thief has no session
    assert "token refused for console-under-test: the code is unknown, expired or used already" in caplog.text


async def test_a_callback_carried_to_another_browser_is_refused_as_csrf(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with world(tmp_path) as w:
        # The attacker signs in as themself and stops at the callback; the victim is made to open it.
        form = await login_form(w.browser, f"{w.door_url}/")
        attackers = location(await submit(w.browser, form, *AUDITOR))
        async with w.browser_like() as victim:
            await victim.get(f"{w.door_url}/")  # the victim's own sign-in under way: another state
            forced = await victim.get(attackers)
            wrong_state = await victim.get(
                f"{w.door_url}{CALLBACK}", params={"code": query_of(attackers)["code"], "state": "made-up"}
            )
            after = await victim.get(f"{w.door_url}/")
    assert forced.status_code == 403
    assert "does not match one this browser started (CSRF)" in forced.text
    assert wrong_state.status_code == 403
    assert after.status_code == 302  # not signed in as the attacker
    assert "sign-in refused at" in caplog.text


async def test_an_error_from_the_provider_is_a_clear_page(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        to_provider = await w.browser.get(f"{w.door_url}/")
        state = query_of(location(to_provider))["state"]
        denied = await w.browser.get(
            f"{w.door_url}{CALLBACK}",
            params={"error": "access_denied", "error_description": "no", "state": state},
        )
    assert denied.status_code == 403
    assert "the provider refused: access_denied: no" in denied.text


async def test_sign_out_ends_the_session(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await sign_in(w.browser, f"{w.door_url}/")
        inside = await w.browser.get(f"{w.door_url}/a")
        out = await w.browser.get(f"{w.door_url}{SIGN_OUT}")
        again = await w.browser.get(f"{w.door_url}/a")
    assert inside.status_code == 200
    assert out.status_code == 200
    assert "Signed out" in out.text
    [cleared] = [c for c in out.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")]
    assert "Max-Age=0" in cleared
    assert again.status_code == 302
    assert location(again).startswith(f"{w.issuer}/auth?")


async def test_a_session_ends_when_its_time_is_up(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await sign_in(w.browser, f"{w.door_url}/")
        before = await w.browser.get(f"{w.door_url}/a")
        w.door_clock.offset = SESSION_SECONDS + 1
        after = await w.browser.get(f"{w.door_url}/a")
    assert before.status_code == 200
    assert after.status_code == 302


async def test_the_session_cookie_reveals_neither_the_token_nor_who_and_an_edited_one_is_no_session(
    tmp_path: Path,
) -> None:
    """Every page on 127.0.0.1 gets the cookie (cookies are per host, not per port), the attacker's
    on 18011 too: what it holds must be opaque there, or the ID token would be a stolen credential."""
    async with world(tmp_path) as w:
        landed = await sign_in(w.browser, f"{w.door_url}/agents", ADMIN)
        cookie = w.browser.cookies[COOKIE]
        edited = cookie[:-6] + ("A" if cookie[-6] != "A" else "B") + cookie[-5:]
        w.browser.cookies.set(COOKIE, edited, domain="127.0.0.1")
        answer = await w.browser.get(f"{w.door_url}/a")
    token = landed.json()["authorization"][0].removeprefix("Bearer ")
    readable = "".join(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("latin-1")
        for part in cookie.split(".")
    )
    for secret in (token, *token.split("."), "admin@kagent.local", "admins"):
        assert secret not in cookie
        assert secret not in readable
    assert answer.status_code == 302


async def test_a_session_cookie_not_sealed_by_the_door_is_no_session(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        forged = Sealer(b"another door's secret", "session").seal({"email": "admin@kagent.local"}, 3600)
        w.browser.cookies.set(COOKIE, forged, domain="127.0.0.1")
        answer = await w.browser.get(f"{w.door_url}/a")
    assert answer.status_code == 302


async def test_an_unreachable_provider_is_a_clear_page_not_a_way_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sock, nowhere = refused_url()
    try:
        async with world(tmp_path, provider_at=nowhere) as w:
            answer = await w.browser.get(f"{w.door_url}/a")
    finally:
        sock.close()
    assert answer.status_code == 502
    assert "Sign-in unavailable" in answer.text
    assert "cannot send /a to sign in" in caplog.text


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/d/x?y=1", "/d/x?y=1"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://e.example", "/"),
    ],
)
def test_only_a_path_on_this_origin_is_returned_to(target: str, kept: str) -> None:
    assert _local(target) == kept
