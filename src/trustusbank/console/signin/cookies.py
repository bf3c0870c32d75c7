"""The front door's cookies: sealed (JWE, `dir` + A256GCM, joserfc) with an expiry, one key per purpose.

Sealed, not only signed, as oauth2-proxy encrypts its session with the cookie secret: the
session holds the person's ID token, a bearer credential the agents accept, and a browser
sends cookies per host, not per port, so every page on 127.0.0.1 receives this one, the
attacker's page on 18011 included. There it is opaque bytes. AES-GCM also authenticates it,
so a cookie no door sealed (or one edited) is refused. A session cookie and a
sign-in-in-flight cookie use different keys derived from the one secret, so neither can
stand in for the other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

HEADER = {"alg": "dir", "enc": "A256GCM"}


class Sealer:
    """Seals claims for one purpose, and opens only what it sealed and has not expired."""

    def __init__(self, secret: bytes, purpose: str, clock: Callable[[], float] = time.time) -> None:
        derived = hmac.new(secret, f"trustusbank-frontdoor/{purpose}".encode(), hashlib.sha256).digest()
        self.key = OctKey.import_key(derived)
        self.clock = clock

    def seal(self, claims: dict[str, Any], seconds: float) -> str:
        now = int(self.clock())
        body = {**claims, "iat": now, "exp": now + int(seconds)}
        return jwe.encrypt_compact(HEADER, json.dumps(body).encode(), self.key)

    def open(self, value: str | None) -> dict[str, Any] | None:
        """The claims, or None for anything this sealer did not seal or whose time is up."""
        if not value:
            return None
        try:
            plain = jwe.decrypt_compact(value, self.key).plaintext
            claims = json.loads(plain or b"")
        except (JoseError, ValueError):
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            return None
        return claims if claims["exp"] > self.clock() else None
