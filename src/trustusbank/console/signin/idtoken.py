"""The front door's view of its provider: discovery, the JWKS, and whether an ID token is one to trust.

A token is trusted only if its RS256 signature verifies against a key the provider's JWKS
publishes (fetched again once when a token names a key not seen yet, as after a rotation),
it was issued by the expected issuer to this client (`azp` too where it names several), it
has not expired, and it carries the nonce this browser's sign-in sent. Anything else is
`Refused`, saying why. The checks are `trustusbank.oidc`'s, which the agents use too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.jwk import KeySet

from trustusbank.errors import RefusedError
from trustusbank.oidc import TokenRefused, UnknownKey, key_set, verify_id_token


class Refused(RefusedError):
    """A sign-in refused; the message says why, for the page and the log."""


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str
    jwks: str


class ProviderView:
    """`issuer` is what tokens must say and where browsers go; `discovery_url` is where this door
    asks (the same place unless the door reaches the provider another way, as in a cluster)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        discovery_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.discovery_url = (discovery_url or self.issuer).rstrip("/")
        self.clock = clock
        self._endpoints: Endpoints | None = None
        self._keys: KeySet | None = None

    async def endpoints(self, http: httpx.AsyncClient) -> Endpoints:
        if self._endpoints is None:
            url = f"{self.discovery_url}/.well-known/openid-configuration"
            doc = await _json(http, url)
            if doc.get("issuer") != self.issuer:
                raise Refused(f"the provider at {url} says it is {doc.get('issuer')!r}, not {self.issuer!r}")
            try:
                found = Endpoints(
                    str(doc["authorization_endpoint"]), str(doc["token_endpoint"]), str(doc["jwks_uri"])
                )
            except KeyError as exc:
                raise Refused(f"the provider's discovery document has no {exc}") from None
            self._endpoints = found
        return self._endpoints

    async def keys(self, http: httpx.AsyncClient, fresh: bool = False) -> KeySet:
        if self._keys is None or fresh:
            doc = await _json(http, (await self.endpoints(http)).jwks)
            try:
                self._keys = key_set(doc)
            except TokenRefused as exc:
                raise Refused(str(exc)) from None
        return self._keys

    async def verify(self, http: httpx.AsyncClient, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, if it is one to trust for the sign-in that sent `nonce`."""

        def check(keys: KeySet) -> dict[str, Any]:
            issuer, audience, now = self.issuer, self.client_id, int(self.clock())
            return verify_id_token(id_token, keys, issuer=issuer, audience=audience, now=now, nonce=nonce)

        try:
            try:
                return check(await self.keys(http))
            except UnknownKey:
                return check(await self.keys(http, fresh=True))
        except TokenRefused as exc:
            raise Refused(str(exc)) from None


async def _json(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        response = await http.get(url)
        response.raise_for_status()
        doc = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Refused(f"the sign-in provider cannot be asked ({url}: {exc})") from None
    if not isinstance(doc, dict):
        raise Refused(f"the sign-in provider's answer at {url} is not a JSON object")
    return doc
