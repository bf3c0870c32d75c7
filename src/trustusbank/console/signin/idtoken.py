"""The front door's view of its provider: discovery, the JWKS, and whether an ID token is one to trust.

A token is trusted only if its RS256 signature verifies against a key the provider's JWKS
publishes (fetched again once when a token names a key not seen yet, as after a rotation),
it was issued by the expected issuer to this client (`azp` too where it names several), it
has not expired, and it carries the nonce this browser's sign-in sent. Anything else is
`Refused`, saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from trustusbank.errors import RefusedError

ALGORITHMS = ["RS256"]
LEEWAY = 30  # seconds of clock difference allowed between the provider and the door


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
                self._keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise Refused(f"the provider's JWKS cannot be read: {exc}") from None
        return self._keys

    async def verify(self, http: httpx.AsyncClient, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, if it is one to trust for the sign-in that sent `nonce`."""
        try:
            try:
                token = jwt.decode(id_token, await self.keys(http), algorithms=ALGORITHMS)
            except InvalidKeyIdError:
                token = jwt.decode(id_token, await self.keys(http, fresh=True), algorithms=ALGORITHMS)
        except InvalidKeyIdError:
            raise Refused("the ID token is signed with a key the provider does not publish") from None
        except JoseError as exc:
            raise Refused(f"the ID token's signature does not verify ({exc.error})") from None
        except ValueError as exc:
            raise Refused(f"the ID token cannot be read ({exc})") from None
        claims = dict(token.claims)
        registry = JWTClaimsRegistry(
            now=lambda: int(self.clock()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            email={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Refused("the ID token has expired") from None
        except JoseError as exc:
            raise Refused(f"the ID token is not for this sign-in: {exc.description or exc.error}") from None
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise Refused("the ID token names several audiences and this client is not its azp")
        groups = claims.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise Refused("the ID token's groups are not a list of names")
        return claims


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
