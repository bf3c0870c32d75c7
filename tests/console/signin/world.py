"""The sign-in chain under test: the real provider and a real front door, each served on 127.0.0.1.

`browser` is an httpx client with a cookie jar, which (like a browser) keeps cookies per host,
not per port, and follows no redirect by itself: each hop is the test's to see. `sign_in`
walks the whole chain as a person does: the page, the provider's form, the callback, the page.
A test that needs a token changed in transit puts `Interceptor` between the door and the
provider's token endpoint: the real provider answers, the interceptor hands the door something
else (re-signed with joserfc), exactly where a man in the middle would.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from trustusbank.console.signin.frontdoor import CALLBACK, DoorConfig, FrontDoor
from trustusbank.console.signin.keyfiles import cookie_secret, signin_dir, signing_key
from trustusbank.console.signin.provider import Client, Provider, create_app
from trustusbank.http_server import uvicorn_config
from trustusbank.workloads.serving import bind

ADMIN = ("admin@kagent.local", "admin")
AUDITOR = ("auditor@trustusbank.local", "auditor")
CLIENT_ID = "console-under-test"
IDENTITY_HEADERS = ("x-forwarded", "x-auth")
SECRET = "s3cret-for-the-door"


@dataclass
class Clock:
    """Wall-clock time moved by `offset` seconds: a component's idea of now, set by the test."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def serve_on(sock: socket.socket, app: ASGIApp, close_wait: float | None = None) -> AsyncIterator[None]:
    """`app` under the production uvicorn config on a socket bound already (its URL known before).
    `close_wait`: seconds a graceful stop waits for open connections before cutting them."""
    server = uvicorn.Server(
        uvicorn_config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=close_wait)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield
    finally:
        server.should_exit = True
        await task
        sock.close()


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def echo(request: Request) -> Response:
    """What the wrapped app is told about the caller."""
    user = request.scope.get("user")
    return JSONResponse(
        {
            "path": request.url.path,
            "query": request.url.query,
            "user": getattr(user, "email", None),
            "auth": list(request.auth.scopes) if "auth" in request.scope else None,
            "forwarded": {k: v for k, v in request.headers.items() if k.startswith(IDENTITY_HEADERS)},
            "authorization": request.headers.getlist("authorization"),
        }
    )


async def healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


def echo_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/{path:path}", echo, methods=["GET", "POST"]),
        ]
    )


class Interceptor:
    """Between the door and the provider: discovery says the token endpoint is here; the real
    provider's answer comes back with its ID token passed through `tamper`."""

    def __init__(self, provider_url: str, tamper: Callable[[str], str]) -> None:
        self.provider_url = provider_url
        self.tamper = tamper
        self.passed: list[str] = []  # the real ID tokens, as the provider issued them

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            async with httpx.AsyncClient(trust_env=False) as http:
                doc = (await http.get(f"{self.provider_url}/.well-known/openid-configuration")).json()
            doc["token_endpoint"] = str(request.base_url).rstrip("/") + "/token"
            return JSONResponse(doc)

        async def token(request: Request) -> Response:
            headers = {k: v for k, v in request.headers.items() if k in ("authorization", "content-type")}
            async with httpx.AsyncClient(trust_env=False) as http:
                real = await http.post(
                    f"{self.provider_url}/token", content=await request.body(), headers=headers
                )
            body = real.json()
            if "id_token" in body:
                self.passed.append(body["id_token"])
                body["id_token"] = self.tamper(body["id_token"])
            return JSONResponse(body, real.status_code)

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/token", token, methods=["POST"]),
            ]
        )


def resign(token: str, reader: RSAKey, signer: RSAKey, kid: str | None = None, **changes: Any) -> str:
    """`token`'s claims (read with `reader`) with `changes`, signed RS256 by `signer`, header kid `kid`."""
    claims = dict(jwt.decode(token, reader, algorithms=["RS256"]).claims)
    claims.update(changes)
    return jwt.encode({"alg": "RS256", "kid": kid or signer.kid, "typ": "JWT"}, claims, signer)


@dataclass
class World:
    provider: Provider
    issuer: str
    door: FrontDoor
    door_url: str
    browser: httpx.AsyncClient
    provider_clock: Clock
    door_clock: Clock
    interceptor: Interceptor | None = None
    state: Path = field(default_factory=Path)

    def browser_like(self) -> httpx.AsyncClient:
        """Another browser: its own cookie jar."""
        return httpx.AsyncClient(trust_env=False, timeout=30)


@asynccontextmanager
async def world(
    tmp_path: Path,
    app: ASGIApp | None = None,
    tamper: Callable[[str], str] | None = None,
    provider_at: str | None = None,
) -> AsyncIterator[World]:
    """Provider and door (around `app`, else `echo_app()`) on their own ports; with `tamper`, an
    `Interceptor` on the back channel; with `provider_at`, the door's provider is elsewhere."""
    state = tmp_path / "state"
    folder = signin_dir(state)
    door_sock, idp_sock, mitm_sock = bind("127.0.0.1", 0), bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    door_url, issuer = url_of(door_sock), provider_at or url_of(idp_sock)
    provider_clock, door_clock = Clock(), Clock()
    provider = Provider(
        url_of(idp_sock), signing_key(folder), [Client(CLIENT_ID, SECRET, frozenset({door_url + CALLBACK}))],
        clock=provider_clock,
    )  # fmt: skip
    interceptor = Interceptor(url_of(idp_sock), tamper) if tamper else None
    config = DoorConfig(
        issuer, CLIENT_ID, SECRET, door_url + CALLBACK, cookie_secret(folder),
        discovery_url=url_of(mitm_sock) if interceptor else None, clock=door_clock,
    )  # fmt: skip
    door = FrontDoor(app or echo_app(), config)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve_on(idp_sock, create_app(provider)))
        if interceptor:
            await stack.enter_async_context(serve_on(mitm_sock, interceptor.app()))
        else:
            mitm_sock.close()
        await stack.enter_async_context(serve_on(door_sock, door))
        browser = await stack.enter_async_context(httpx.AsyncClient(trust_env=False, timeout=30))
        yield World(provider, issuer, door, door_url, browser, provider_clock, door_clock, interceptor, state)


# -- walking the chain ------------------------------------------------------------------------


class FormReader(HTMLParser):
    """The first form's action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = found.get("action") or ""
        elif tag == "input" and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""


@dataclass
class LoginForm:
    page: httpx.Response
    action: str  # absolute
    fields: dict[str, str]


def location(response: httpx.Response) -> str:
    assert response.is_redirect, (response.status_code, response.text[:500])
    return urljoin(str(response.url), response.headers["location"])


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def login_form(browser: httpx.AsyncClient, url: str) -> LoginForm:
    """Open `url` without a session: the door sends the browser to the provider's form."""
    to_provider = await browser.get(url)
    page = await browser.get(location(to_provider))
    assert page.status_code == 200, page.text
    reader = FormReader()
    reader.feed(page.text)
    assert reader.action is not None, page.text
    return LoginForm(page, urljoin(str(page.url), reader.action), reader.fields)


async def submit(browser: httpx.AsyncClient, form: LoginForm, email: str, password: str) -> httpx.Response:
    return await browser.post(form.action, data={**form.fields, "login": email, "password": password})


async def sign_in(browser: httpx.AsyncClient, url: str, who: tuple[str, str] = ADMIN) -> httpx.Response:
    """The page at `url`, after signing in as `who` through the form; every hop checked."""
    form = await login_form(browser, url)
    sent = await submit(browser, form, *who)
    assert sent.status_code == 303, sent.text
    landed = await browser.get(location(sent))  # the door's callback
    assert landed.status_code == 302, landed.text
    return await browser.get(location(landed))
