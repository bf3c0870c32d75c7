"""PKCE (RFC 7636), S256 only: the verifier the front door keeps and the challenge it sends.

The transform is authlib's; this module only gives it a typed face (its stubs leave it untyped).
"""

from __future__ import annotations

import secrets

from authlib.oauth2.rfc7636 import create_s256_code_challenge


def new_verifier() -> str:
    """86 characters of the URL-safe alphabet: within RFC 7636's 43 to 128 unreserved ones."""
    return secrets.token_urlsafe(64)


def s256(verifier: str) -> str:
    challenge: str = create_s256_code_challenge(verifier)  # type: ignore[no-untyped-call]
    return challenge
