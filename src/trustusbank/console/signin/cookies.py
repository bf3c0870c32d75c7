"""The front door's signed cookies: JWTs (HS256, joserfc) with an expiry, one key per purpose.

A session cookie and a sign-in-in-flight cookie are signed with different keys derived from
the one secret, so neither can stand in for the other. The browser can read what they say
(nothing in them is a secret from the person signed in) but cannot change it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

ALGORITHM = "HS256"


class Signer:
    """Signs claims for one purpose, and gives back only what it signed and has not expired."""

    def __init__(self, secret: bytes, purpose: str, clock: Callable[[], float] = time.time) -> None:
        derived = hmac.new(secret, f"trustusbank-frontdoor/{purpose}".encode(), hashlib.sha256).digest()
        self.key = OctKey.import_key(derived)
        self.clock = clock

    def sign(self, claims: dict[str, Any], seconds: float) -> str:
        now = int(self.clock())
        body = {**claims, "iat": now, "exp": now + int(seconds)}
        return jwt.encode({"alg": ALGORITHM}, body, self.key, algorithms=[ALGORITHM])

    def verify(self, value: str | None) -> dict[str, Any] | None:
        """The claims, or None for anything this signer did not sign or whose time is up."""
        if not value:
            return None
        try:
            token = jwt.decode(value, self.key, algorithms=[ALGORITHM])
            JWTClaimsRegistry(now=lambda: int(self.clock()), exp={"essential": True}).validate(token.claims)
        except (JoseError, ValueError):
            return None
        return dict(token.claims)
