"""The chain's secrets: made once, kept under the state directory, readable by the owner only.

The provider's signing key outlives the console process, so the JWKS a verifier cached stays
right across a restart; the front door's cookie key too, so the supervisor restarting a
crashed console signs no one out. A secret file another user could read is refused, as ssh
refuses a private key: whoever read it could mint tokens or sessions.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from joserfc.jwk import RSAKey

from trustusbank.errors import ConfigError

SIGNING_KEY = "signing-key.pem"
COOKIE_SECRET = "cookie-secret"


def signin_dir(state: Path) -> Path:
    return state / "console" / "signin"


def _owner_only(path: Path) -> None:
    mode = path.stat().st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(f"{path} may be read by others (mode {stat.S_IMODE(mode):04o}); expected 0600")


def secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes, written first from `make()` if it does not exist (0600, in a 0700 folder).

    It is written whole under another name and linked into place, which fails if the name is
    taken: two processes starting at once keep the first one's secret, never half of one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        scratch = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(make())
            os.link(scratch, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            scratch.unlink(missing_ok=True)
    _owner_only(path)
    return path.read_bytes()


def signing_key(folder: Path) -> RSAKey:
    """The provider's RS256 key; its `kid` is its thumbprint (RFC 7638), the same on every start."""

    def make() -> bytes:
        return RSAKey.generate_key(2048).as_pem(private=True)

    key = RSAKey.import_key(secret_file(folder / SIGNING_KEY, make), {"use": "sig", "alg": "RS256"})
    key.ensure_kid()
    return key


def cookie_secret(folder: Path) -> bytes:
    return secret_file(folder / COOKIE_SECRET, lambda: secrets.token_bytes(32))
