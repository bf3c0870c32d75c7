"""Whether an OpenID Connect ID token is one to trust: one check for every party that receives one.

The console's front door checks the token the provider hands it at sign-in (with the nonce its
browser sent); an agent checks the same token when the console sends it on the user's behalf.
Both ask the same things, so both ask here: an RS256 signature by a key the provider publishes,
the expected issuer, this audience (and `azp` where several are named), an expiry not passed,
`iat`, `sub` and `email` present, and `groups` a list of names. Anything else is `TokenRefused`,
saying why. The keys are the caller's to get (the door fetches the provider's JWKS, an agent
reads the copy its controller rendered): nothing here touches the network.
"""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.errors import DecodeError, ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from trustusbank.errors import RefusedError

ALGORITHMS = ["RS256"]
LEEWAY = 30  # seconds of clock difference allowed between the provider and the one checking


class TokenRefused(RefusedError):
    """An ID token not to trust; the message says why, for a page and a log line."""


class UnknownKey(TokenRefused):
    """Signed with a key the keys given do not hold: after a rotation, fetching them again may help."""


def key_set(document: Any) -> KeySet:
    """A JWKS document as keys; TokenRefused if it is not one."""
    try:
        return KeySet.import_key_set(document)
    except (JoseError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TokenRefused(f"the provider's JWKS cannot be read: {exc}") from None


def verify_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    audience: str,
    now: int,
    nonce: str | None = None,
) -> dict[str, Any]:
    """The token's claims if it is one to trust; with `nonce`, only for the sign-in that sent it."""
    try:
        token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
    except InvalidKeyIdError:
        raise UnknownKey("the ID token is signed with a key the provider does not publish") from None
    except DecodeError as exc:
        raise TokenRefused(f"the ID token cannot be read ({exc.description or exc.error})") from None
    except JoseError as exc:
        raise TokenRefused(f"the ID token's signature does not verify ({exc.error})") from None
    except (ValueError, TypeError) as exc:
        raise TokenRefused(f"the ID token cannot be read ({exc})") from None
    claims = dict(token.claims)
    wanted: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "sub": {"essential": True},
        "email": {"essential": True},
    }
    if nonce is not None:
        wanted["nonce"] = {"essential": True, "value": nonce}
    try:
        JWTClaimsRegistry(now=lambda: now, leeway=LEEWAY, **wanted).validate(claims)
    except ExpiredTokenError:
        raise TokenRefused("the ID token has expired") from None
    except JoseError as exc:
        purpose = "this sign-in" if nonce is not None else "this client"
        raise TokenRefused(f"the ID token is not for {purpose}: {exc.description or exc.error}") from None
    said = claims["aud"]
    if isinstance(said, list) and len(said) > 1 and claims.get("azp") != audience:
        raise TokenRefused("the ID token names several audiences and this client is not its azp")
    groups = claims.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise TokenRefused("the ID token's groups are not a list of names")
    return claims
