"""Port 15556: dex's role, the OpenID Connect provider the console's front doors send browsers to.

- `/.well-known/openid-configuration` and `/keys`: discovery and the JWKS (one RS256 key);
- `/auth`: the authorization endpoint (code flow; PKCE S256 and a nonce required) showing the
  login form, which posts to `/auth/login`, CSRF-checked against a cookie bound to that one
  request (another site cannot sign the browser in as someone else);
- `/token`: a code for an ID token, for the authenticated client it was issued to, once,
  within `CODE_SECONDS`, with the verifier whose challenge `/auth` was given;
- `/healthz`.

Logins under way and codes are kept in memory: a provider that restarts forgets them and the
browser starts over. Every refusal is logged with its reason, never with a password.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from trustusbank.console.signin.pages import page, refusal
from trustusbank.console.signin.pkce import s256
from trustusbank.console.signin.users import USERS, User, authenticate

log = logging.getLogger(__name__)

LOGIN_SECONDS = 600  # a login form is good for ten minutes
CODE_SECONDS = 60  # a code, for one minute (RFC 6749 says at most ten)
ID_TOKEN_SECONDS = 3600
MAX_ATTEMPTS = 5  # wrong passwords for one login form, then it is gone
MAX_PENDING = 1000  # logins and codes kept at most; the oldest go first
SCOPES = ("openid", "email", "profile", "groups")
ALGORITHM = "RS256"
CSRF_COOKIE = "tub_signin_csrf_"
PKCE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636's verifier; a S256 challenge is 43 of these


@dataclass(frozen=True)
class Client:
    """A relying party: the front door of one or more pages, each with its registered callback."""

    client_id: str
    secret: str
    redirect_uris: frozenset[str]


@dataclass
class Login:
    """An authorization request waiting for its form."""

    client: Client
    redirect_uri: str
    state: str
    nonce: str
    challenge: str
    scopes: tuple[str, ...]
    csrf: str
    expires: float
    attempts: int = 0


@dataclass(frozen=True)
class Grant:
    """What a code stands for."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    user: User
    auth_time: int
    expires: float


def with_query(uri: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _token_error(error: str, description: str, status: int = 400) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    return JSONResponse({"error": error, "error_description": description}, status, headers=headers)


def _basic(header: str) -> tuple[str, str] | None:
    """client_id and secret from `Authorization: Basic` (each form-urlencoded, RFC 6749 2.3.1)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except ValueError:
        return None
    client_id, colon, secret = decoded.partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if colon else None


class Provider:
    def __init__(
        self,
        issuer: str,
        key: RSAKey,
        clients: list[Client],
        users: tuple[User, ...] = USERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.key = key
        self.clients = {c.client_id: c for c in clients}
        self.users = users
        self.clock = clock
        self.logins: dict[str, Login] = {}
        self.codes: dict[str, Grant] = {}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/auth",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/keys",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified",
                "name", "groups",
            ],
        }  # fmt: skip

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self.key]).as_dict(private=False))

    def _sweep(self) -> None:
        now = self.clock()
        for kept in (self.logins, self.codes):
            for key in [k for k, v in kept.items() if v.expires <= now]:
                del kept[key]
            while len(kept) > MAX_PENDING:
                del kept[next(iter(kept))]

    # -- /auth: the authorization request, then the form -----------------------------------------

    def authorize(self, request: Request) -> Response:
        self._sweep()
        q = request.query_params
        client = self.clients.get(q.get("client_id", ""))
        if client is None:
            log.warning("authorization refused: unknown client %r", q.get("client_id"))
            return refusal("Unknown client", "The page that sent you here is not registered here.", 400)
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:  # never send a browser to an unregistered address
            log.warning("authorization refused: %r is not registered for %s", redirect_uri, client.client_id)
            return refusal("Unknown return address", f"{redirect_uri!r} is not registered.", 400)
        state = q.get("state", "")
        scopes = tuple(q.get("scope", "").split())
        problem: tuple[str, str] | None = None
        if q.get("response_type") != "code":
            problem = ("unsupported_response_type", "only the authorization code flow (response_type=code)")
        elif "openid" not in scopes:
            problem = ("invalid_scope", "the openid scope is required")
        elif not PKCE.fullmatch(q.get("code_challenge", "")) or q.get("code_challenge_method") != "S256":
            problem = ("invalid_request", "PKCE is required: a code_challenge, code_challenge_method=S256")
        elif not q.get("nonce"):
            problem = ("invalid_request", "a nonce is required")
        if problem is not None:
            log.warning("authorization refused for %s: %s (%s)", client.client_id, *problem)
            error, description = problem
            params = {"error": error, "error_description": description, "state": state}
            return RedirectResponse(with_query(redirect_uri, params), 303)
        request_id, csrf = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
        self.logins[request_id] = Login(
            client, redirect_uri, state, q["nonce"], q["code_challenge"], scopes, csrf,
            self.clock() + LOGIN_SECONDS,
        )  # fmt: skip
        response = self.form(request_id, csrf, redirect_uri)
        response.set_cookie(
            CSRF_COOKIE + request_id, csrf, max_age=LOGIN_SECONDS, path="/auth",
            httponly=True, samesite="strict",
        )  # fmt: skip
        return response

    def form(self, request_id: str, csrf: str, back_to: str, problem: str = "", email: str = "") -> Response:
        said = f'<p class="problem" role="alert">{escape(problem)}</p>' if problem else ""
        body = (
            f"<h1>Sign in to trustusbank</h1>{said}"
            '<form method="post" action="/auth/login">'
            f'<input type="hidden" name="request" value="{escape(request_id)}">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            '<label for="login">E-mail</label>'
            '<input id="login" name="login" type="email" autocomplete="username" required '
            f'value="{escape(email)}">'
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" autocomplete="current-password" required>'
            '<button type="submit">Sign in</button></form>'
            f'<p class="muted">{escape(self.issuer)} · dex\'s role in the write-up</p>'
        )
        status = 401 if problem else 200
        return page("Sign in · trustusbank", body, status, form_targets=f"'self' {origin(back_to)}")

    async def login(self, request: Request) -> Response:
        self._sweep()
        form = await request.form()
        request_id = str(form.get("request", ""))
        pending = self.logins.get(request_id)
        if pending is None:
            log.warning("login refused: no sign-in under way for that form (expired, finished or unknown)")
            return refusal(
                "This sign-in has expired",
                "The form is older than ten minutes, was used already, or the provider restarted. "
                "Go back to the page you wanted and sign in from there.",
                400,
            )
        cookie = request.cookies.get(CSRF_COOKIE + request_id, "")
        sent = str(form.get("csrf", ""))
        if not (hmac.compare_digest(cookie, pending.csrf) and hmac.compare_digest(sent, pending.csrf)):
            log.warning("login refused for %s: the CSRF check failed", pending.client.client_id)
            return refusal(
                "Sign-in refused", "The form was not sent from this browser's sign-in page (CSRF check).", 403
            )
        email = str(form.get("login", ""))
        user = await run_in_threadpool(authenticate, email, str(form.get("password", "")), self.users)
        if user is None:
            pending.attempts += 1
            log.warning(
                "login refused for %r: wrong e-mail or password (attempt %d of %d)",
                email, pending.attempts, MAX_ATTEMPTS,
            )  # fmt: skip
            if pending.attempts >= MAX_ATTEMPTS:
                del self.logins[request_id]
                return refusal("Too many attempts", "Go back to the page you wanted and start again.", 403)
            wrong = "Wrong e-mail or password."
            return self.form(request_id, pending.csrf, pending.redirect_uri, wrong, email)
        del self.logins[request_id]
        code = secrets.token_urlsafe(32)
        now = self.clock()
        self.codes[code] = Grant(
            pending.client.client_id, pending.redirect_uri, pending.challenge, pending.nonce, user,
            int(now), now + CODE_SECONDS,
        )  # fmt: skip
        log.info(
            "signed in %s (groups %s) for %s", user.email, ",".join(user.groups), pending.client.client_id
        )
        back = with_query(pending.redirect_uri, {"code": code, "state": pending.state})
        response = RedirectResponse(back, 303)
        response.delete_cookie(CSRF_COOKIE + request_id, path="/auth", httponly=True, samesite="strict")
        return response

    # -- /token: the back channel ----------------------------------------------------------------

    def _client(self, request: Request, form: Mapping[str, Any]) -> Client | None:
        given = _basic(request.headers.get("authorization", ""))
        if given is None and "client_secret" in form:
            given = (str(form.get("client_id", "")), str(form["client_secret"]))
        if given is None:
            return None
        client = self.clients.get(given[0])
        if client is None or not hmac.compare_digest(given[1].encode(), client.secret.encode()):
            return None
        return client

    async def token(self, request: Request) -> Response:
        self._sweep()
        form = await request.form()
        client = self._client(request, form)
        if client is None:
            log.warning("token refused: client authentication failed")
            return _token_error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "authorization_code":
            return _token_error("unsupported_grant_type", "only authorization_code")
        grant = self.codes.pop(str(form.get("code", "")), None)  # once presented, a code is spent
        verifier = str(form.get("code_verifier", ""))
        problem = ""
        if grant is None:
            problem = "the code is unknown, expired or used already"
        elif grant.expires <= self.clock():
            problem = "the code has expired"
        elif grant.client_id != client.client_id:
            problem = "the code was issued to another client"
        elif form.get("redirect_uri") != grant.redirect_uri:
            problem = "redirect_uri differs from the authorization request's"
        elif not PKCE.fullmatch(verifier):
            problem = "PKCE: the code_verifier is missing or malformed"
        elif not hmac.compare_digest(s256(verifier), grant.challenge):
            problem = "PKCE: the code_verifier does not match the code_challenge"
        if grant is None or problem:
            log.warning("token refused for %s: %s", client.client_id, problem)
            return _token_error("invalid_grant", problem)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(32),  # no API takes it: the ID token is the point
                "token_type": "Bearer",
                "expires_in": ID_TOKEN_SECONDS,
                "id_token": self.id_token(grant),
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def id_token(self, grant: Grant) -> str:
        now = int(self.clock())
        claims = {
            "iss": self.issuer,
            "sub": grant.user.subject,
            "aud": grant.client_id,
            "exp": now + ID_TOKEN_SECONDS,
            "iat": now,
            "auth_time": grant.auth_time,
            "nonce": grant.nonce,
            "email": grant.user.email,
            "email_verified": True,
            "name": grant.user.name,
            "groups": list(grant.user.groups),
        }
        header = {"alg": ALGORITHM, "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=[ALGORITHM])


def create_app(provider: Provider) -> Starlette:
    async def home(_: Request) -> Response:
        body = (
            "<h1>trustusbank sign-in</h1>"
            f"<p>The OpenID Connect provider at {escape(provider.issuer)} (dex's role in the write-up). "
            "Open one of the console's pages to sign in.</p>"
        )
        return page("trustusbank sign-in", body)

    async def discovery(_: Request) -> Response:
        return JSONResponse(provider.discovery())

    async def keys(_: Request) -> Response:
        return JSONResponse(provider.jwks())

    async def authorize(request: Request) -> Response:
        return provider.authorize(request)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
            Route("/keys", keys, methods=["GET"]),
            Route("/auth", authorize, methods=["GET"]),
            Route("/auth/login", provider.login, methods=["POST"]),
            Route("/token", provider.token, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
