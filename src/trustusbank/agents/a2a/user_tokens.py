"""The person behind a request: an ID token from the console's sign-in provider, verified in the pod.

kagent's UI calls an agent on behalf of the person signed in, with that person's token; kagent
Enterprise checks it at the agent's waypoint and matches a UserGroup subject against its `groups`
claim. Here the agent checks it itself, with `trustusbank.oidc` (the front door's checks): an
RS256 signature by a key the provider publishes, the provider's issuer, the console's client as
audience, an expiry not passed.

A pod cannot reach the provider (its network is its own), so the provider's public keys reach it
as configuration, the way a controller renders an IdP's JWKS into a pod: a JSON file (issuer,
audience, JWKS) named by `TRUSTUSBANK_AGENT_USER_TOKENS`, written by `up` from the provider's
signing key. A file that is named but unusable stops the agent at start, with the reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet

from trustusbank.env import AGENT_USER_TOKENS, SettingError
from trustusbank.oidc import TokenRefused, key_set, verify_id_token


@dataclass(frozen=True)
class Person:
    """Who a verified token says is asking."""

    email: str
    subject: str
    groups: tuple[str, ...]


def provider_document(issuer: str, audience: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What the file holds: the runtime writes it, `TrustedProvider.load` reads it."""
    return {"issuer": issuer.rstrip("/"), "audience": audience, "jwks": jwks}


@dataclass(frozen=True)
class TrustedProvider:
    issuer: str
    audience: str
    keys: KeySet
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def from_document(cls, document: Any, clock: Callable[[], float] = time.time) -> TrustedProvider:
        """ValueError if `document` is not what `provider_document` writes."""
        if not isinstance(document, dict):
            raise ValueError("expected a JSON object with issuer, audience and jwks")
        issuer, audience = document.get("issuer"), document.get("audience")
        if not isinstance(issuer, str) or not issuer or not isinstance(audience, str) or not audience:
            raise ValueError("issuer and audience must be non-empty strings")
        try:
            keys = key_set(document.get("jwks"))
        except TokenRefused as exc:
            raise ValueError(str(exc)) from None
        return cls(issuer.rstrip("/"), audience, keys, clock)

    @classmethod
    def load(cls, path: Path, clock: Callable[[], float] = time.time) -> TrustedProvider:
        return cls.from_document(json.loads(path.read_text(encoding="utf-8")), clock)

    def verify(self, id_token: str) -> Person:
        """The person the token names; TokenRefused, saying why, for any token not to trust."""
        claims = verify_id_token(
            id_token, self.keys, issuer=self.issuer, audience=self.audience, now=int(self.clock())
        )
        return Person(str(claims["email"]), str(claims["sub"]), tuple(claims.get("groups", [])))


def from_env() -> TrustedProvider | None:
    """The provider `TRUSTUSBANK_AGENT_USER_TOKENS` names, None when unset; SettingError if unusable."""
    path = AGENT_USER_TOKENS.read()
    if path is None:
        return None
    try:
        return TrustedProvider.load(path)
    except (OSError, ValueError) as exc:
        raise SettingError(f"{AGENT_USER_TOKENS.name}: {path} cannot be used: {exc}") from exc
