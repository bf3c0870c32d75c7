"""oauth2-proxy's role: an ASGI wrapper that lets a request reach the app only with a session.

- No session: a page request is sent to the provider's `/auth` with a fresh state, nonce and
  PKCE challenge, remembered in a short-lived sealed cookie named after the state (so two tabs
  signing in at once do not overwrite each other) and sent back only to the callback; any
  other request is answered 401.
- `/oauth2/callback`: the state must be the one this browser's cookie holds (else it is a
  forged or stale sign-in: CSRF), the code is exchanged over the back channel (client secret
  and PKCE verifier), the ID token verified (`idtoken`), and a sealed session cookie set
  (encrypted and authenticated, HttpOnly, SameSite=Lax, with an expiry); then back to the
  page first asked for.
- `/oauth2/sign_out` clears it. `/healthz` stays open: the runtime's readiness probe.
- The app sees who is asking in `scope["user"]` (Starlette's `request.user`) and in
  `X-Forwarded-Email`, `-User`, `-Preferred-Username` and `-Groups`, which the door sets
  itself after removing every `X-Forwarded-*` and `X-Auth-Request-*` header the browser sent.
- The app is also handed the person's ID token as `Authorization: Bearer <id_token>`
  (oauth2-proxy's `--pass-authorization-header`), so that it can call agents on their behalf
  and the agents can check who that is themselves. The token is kept in the session cookie
  (sealed, HttpOnly; about 1.5 kB in all), and an `Authorization` the browser sent is removed
  first: the app never sees a token the door did not verify. The session ends when the token
  expires, at the latest (the provider issues no refresh token, so the person signs in again).

Every refusal is a clear page and a log line saying why; none lets the request through.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from starlette.authentication import AuthCredentials, BaseUser
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from trustusbank.console.signin.cookies import Sealer
from trustusbank.console.signin.idtoken import ProviderView, Refused
from trustusbank.console.signin.pages import page, refusal
from trustusbank.console.signin.pkce import new_verifier, s256

log = logging.getLogger(__name__)

CALLBACK = "/oauth2/callback"
SIGN_OUT = "/oauth2/sign_out"
OPEN_PATHS = frozenset({"/healthz"})
SCOPE = "openid email profile groups"
SIGN_IN_SECONDS = 600  # from the redirect to the provider to the callback
SESSION_SECONDS = 8 * 3600
STRIPPED_PREFIXES = (b"x-forwarded-", b"x-auth-request-")
STRIPPED = frozenset({b"authorization"})  # only the door says who is asking, and with what token
BACK_CHANNEL_TIMEOUT = 10.0


@dataclass(frozen=True)
class DoorConfig:
    issuer: str  # the provider, as browsers reach it and as its tokens name it
    client_id: str
    client_secret: str
    redirect_uri: str  # this door's own callback, as browsers reach it
    cookie_secret: bytes
    cookie_name: str = "_oauth2_proxy"
    session_seconds: float = SESSION_SECONDS
    discovery_url: str | None = None  # where the door asks the provider, if not at `issuer`
    clock: Callable[[], float] = field(default=time.time)


class SignedIn(BaseUser):
    """Who the session belongs to, as the provider's ID token said."""

    def __init__(
        self, email: str, name: str, groups: tuple[str, ...], subject: str, id_token: str = ""
    ) -> None:
        self.email, self.name, self.groups, self.subject = email, name, groups, subject
        self.id_token = id_token  # the provider's, as verified at sign-in: what the app may pass on

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.email


def _headers_without_identity(scope: Scope) -> list[tuple[bytes, bytes]]:
    return [
        (k, v)
        for k, v in scope["headers"]
        if not k.lower().startswith(STRIPPED_PREFIXES) and k.lower() not in STRIPPED
    ]


def _local(target: str) -> str:
    """A path on this origin to return to; anything that could leave it is `/`."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    return target


class FrontDoor:
    def __init__(self, app: ASGIApp, config: DoorConfig) -> None:
        self.app = app
        self.config = config
        self.provider = ProviderView(config.issuer, config.client_id, config.discovery_url, config.clock)
        self.sessions = Sealer(config.cookie_secret, "session", config.clock)
        self.sign_ins = Sealer(config.cookie_secret, "sign-in", config.clock)
        self.secure = urlsplit(config.redirect_uri).scheme == "https"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan: the app's own
            return
        scope = {**scope, "headers": _headers_without_identity(scope)}
        path = scope["path"]
        if path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        user = self.session(HTTPConnection(scope))
        if scope["type"] == "websocket":
            if user is not None:
                await self.app(self.as_user(scope, user), receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": "sign in first"})
            return
        request = Request(scope, receive)
        if path == CALLBACK:
            response = await self.callback(request)
        elif path == SIGN_OUT:
            response = self.sign_out()
        elif user is not None:
            await self.app(self.as_user(scope, user), receive, send)
            return
        elif request.method in ("GET", "HEAD"):
            response = await self.start(request)
        else:
            response = PlainTextResponse("Sign in first: open a page of this console.", 401)
        await response(scope, receive, send)

    # -- the session ----------------------------------------------------------------------------

    def session(self, connection: HTTPConnection) -> SignedIn | None:
        claims = self.sessions.open(connection.cookies.get(self.config.cookie_name))
        if claims is None:
            return None
        return SignedIn(
            str(claims.get("email", "")), str(claims.get("name", "")),
            tuple(str(g) for g in claims.get("groups", [])), str(claims.get("sub", "")),
            str(claims.get("id_token", "")),
        )  # fmt: skip

    @staticmethod
    def as_user(scope: Scope, user: SignedIn) -> Scope:
        said = [
            (b"x-forwarded-email", user.email),
            (b"x-forwarded-user", user.subject),
            (b"x-forwarded-preferred-username", user.name),
            (b"x-forwarded-groups", ",".join(user.groups)),
        ]
        if user.id_token:
            said.append((b"authorization", f"Bearer {user.id_token}"))
        headers = scope["headers"] + [(k, v.encode("latin-1", "replace")) for k, v in said]
        credentials = AuthCredentials(["authenticated", *(f"group:{g}" for g in user.groups)])
        return {**scope, "headers": headers, "user": user, "auth": credentials}

    # -- signing in ---------------------------------------------------------------------------------

    def _sign_in_cookie(self, state: str) -> str:
        return f"{self.config.cookie_name}_csrf_{state[:16]}"

    async def start(self, request: Request) -> Response:
        """Off to the provider, remembering state, nonce, verifier and where to come back to."""
        try:
            async with self._http() as http:
                endpoints = await self.provider.endpoints(http)
        except Refused as exc:
            log.error("cannot send %s to sign in: %s", request.url.path, exc)
            return refusal("Sign-in unavailable", str(exc), 502)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = new_verifier()
        query = urlencode({
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        })  # fmt: skip
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        remembered = self.sign_ins.seal(
            {"state": state, "nonce": nonce, "verifier": verifier, "rd": _local(back)}, SIGN_IN_SECONDS
        )
        separator = "&" if "?" in endpoints.authorization else "?"
        response = RedirectResponse(f"{endpoints.authorization}{separator}{query}", 302)
        response.set_cookie(
            self._sign_in_cookie(state), remembered, max_age=SIGN_IN_SECONDS, path=CALLBACK,
            httponly=True, samesite="lax", secure=self.secure,
        )  # fmt: skip
        return response

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        state = params.get("state", "")
        cookie = self._sign_in_cookie(state) if state else ""
        try:
            response = await self._finish(request, state, cookie)
        except Refused as exc:
            log.warning("sign-in refused at %s: %s", self.config.redirect_uri, exc)
            response = refusal("Sign-in refused", str(exc), 403, again="/")
        if cookie:
            response.delete_cookie(cookie, path=CALLBACK, httponly=True, samesite="lax", secure=self.secure)
        return response

    async def _finish(self, request: Request, state: str, cookie: str) -> Response:
        params = request.query_params
        if "error" in params:
            raise Refused(f"the provider refused: {params['error']}: {params.get('error_description', '')}")
        remembered = self.sign_ins.open(request.cookies.get(cookie)) if cookie else None
        if remembered is None or not secrets.compare_digest(str(remembered.get("state", "")), state):
            raise Refused(
                "the sign-in's state does not match one this browser started (CSRF), or it took "
                "longer than ten minutes"
            )
        code = params.get("code")
        if not code:
            raise Refused("the provider sent no code")
        async with self._http() as http:
            id_token = await self._redeem(http, code, str(remembered["verifier"]))
            claims = await self.provider.verify(http, id_token, str(remembered["nonce"]))
        groups: list[str] = claims.get("groups", [])
        session = {k: claims.get(k) for k in ("sub", "email", "name")}
        session |= {"groups": groups, "id_token": id_token}
        # No longer than the token it hands the app: past its expiry, the person signs in again.
        seconds = max(1, int(min(self.config.session_seconds, int(claims["exp"]) - self.config.clock())))
        response = RedirectResponse(_local(str(remembered.get("rd", "/"))), 302)
        response.set_cookie(
            self.config.cookie_name, self.sessions.seal(session, seconds),
            max_age=seconds, path="/", httponly=True, samesite="lax", secure=self.secure,
        )  # fmt: skip
        log.info("signed in %s (groups %s)", claims["email"], ",".join(groups))
        return response

    async def _redeem(self, http: httpx.AsyncClient, code: str, verifier: str) -> str:
        """The ID token for `code`, from the provider's token endpoint (client_secret_basic)."""
        endpoints = await self.provider.endpoints(http)
        auth = httpx.BasicAuth(quote_plus(self.config.client_id), quote_plus(self.config.client_secret))
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": verifier,
        }
        try:
            answer = await http.post(endpoints.token, data=form, auth=auth)
            body: Any = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Refused(f"the provider's token endpoint cannot be asked: {exc}") from None
        if not isinstance(body, dict):
            raise Refused("the provider's token answer is not a JSON object")
        if answer.status_code != 200 or "error" in body:
            said = f"{body.get('error')}: {body.get('error_description')}"
            raise Refused(f"the provider refused the code: {said}")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise Refused("the provider's token answer has no ID token")
        return id_token

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(trust_env=False, timeout=BACK_CHANNEL_TIMEOUT)

    def sign_out(self) -> Response:
        body = (
            '<h1>Signed out</h1><p>This console\'s session is gone.</p><p><a href="/">Sign in again</a></p>'
        )
        response = page("Signed out · trustusbank", body)
        response.delete_cookie(
            self.config.cookie_name, path="/", httponly=True, samesite="lax", secure=self.secure
        )
        return response
