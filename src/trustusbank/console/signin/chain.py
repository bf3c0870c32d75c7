"""The chain as the console process runs it: one provider, and a front door before each page.

All the console's pages are one client of the provider (`trustusbank-console`, a callback
registered for each page) and share one session cookie, as oauth2-proxy's cookie does across
the hosts it fronts: the browser keeps cookies per host, not per port, so signing in on the
dashboard (18001) signs in on every operator tab (sessions 18007, and the pods' pages the
console relays: alerts 18002, SOC inbox 18012, agent registry 18006), and signing out of any
signs out of all. The client secret is new on each start (both ends are this process); the
signing key and the cookie key are kept under the state directory (`keyfiles`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp

from trustusbank.console.signin import keyfiles, provider
from trustusbank.console.signin.frontdoor import CALLBACK, DoorConfig, FrontDoor

CLIENT_ID = "trustusbank-console"


@dataclass(frozen=True)
class Fronted:
    provider: ASGIApp
    pages: list[ASGIApp]  # each given app, behind its front door, in the order given


def sign_in_chain(state: Path, issuer: str, pages: list[tuple[ASGIApp, str]]) -> Fronted:
    """The provider at `issuer`, and each `(app, origin)` behind a front door whose callback is
    at `origin` (the page's `http://host:port`, as a browser reaches it)."""
    folder = keyfiles.signin_dir(state)
    secret = secrets.token_urlsafe(32)
    client = provider.Client(CLIENT_ID, secret, frozenset(origin + CALLBACK for _, origin in pages))
    idp = provider.Provider(issuer, keyfiles.signing_key(folder), [client])
    cookie = keyfiles.cookie_secret(folder)
    doors: list[ASGIApp] = [
        FrontDoor(app, DoorConfig(issuer, CLIENT_ID, secret, origin + CALLBACK, cookie))
        for app, origin in pages
    ]
    return Fronted(provider.create_app(idp), doors)
