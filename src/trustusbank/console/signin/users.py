"""The provider's users: dex's `staticPasswords`, the write-up's admin and the story's auditor and customer.

Only scrypt digests are kept (each with its own salt), so the source says how to check a
password, never what it is; the passwords are the write-up's published demo ones (README).
An unknown e-mail costs the same scrypt as a known one, so timing does not say who exists.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

# scrypt's cost: 16 MiB and tens of milliseconds per attempt, as hashlib's documentation suggests.
N, R, P, LENGTH = 2**14, 8, 1, 32


@dataclass(frozen=True)
class User:
    email: str
    name: str
    groups: tuple[str, ...]
    salt: bytes
    digest: bytes  # scrypt(password, salt)

    @property
    def subject(self) -> str:
        """A stable `sub` claim, as dex derives one from the connector's user id."""
        return hashlib.sha256(self.email.encode()).hexdigest()[:32]


def digest(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=LENGTH)


USERS: tuple[User, ...] = (
    User(
        "admin@kagent.local", "admin", ("admins",),
        bytes.fromhex("d44b6865fba2981ccc6c492cbf94eefb"),
        bytes.fromhex("2ba04b199b88ff7f8a21b19468ab41eb937866102f9de45732d2a869f3d6d4d5"),
    ),
    User(
        "auditor@trustusbank.local", "auditor", ("auditors",),
        bytes.fromhex("0fe7030982ae37d065e1cf23f27906a9"),
        bytes.fromhex("a6b138b8b1baffbcdb13844516510a7285b6b36ac5208dcc78f9d366391bfb6c"),
    ),
    User(
        "customer@trustusbank.local", "customer", ("customers",),
        bytes.fromhex("819fef04c902c16baecc69894771c049"),
        bytes.fromhex("c78a0fa748b1a128fedec870f710b9bdb21eb4f3c2264137ca6de35558490c15"),
    ),
)  # fmt: skip

_NOBODY = User("", "", (), bytes(16), bytes(LENGTH))  # what an unknown e-mail is checked against


def authenticate(email: str, password: str, users: tuple[User, ...] = USERS) -> User | None:
    """The user whose e-mail (any case) and password these are, or None."""
    wanted = email.strip().lower()
    user = next((u for u in users if u.email == wanted), None)
    candidate = digest(password, (user or _NOBODY).salt)
    if user is None or not hmac.compare_digest(candidate, user.digest):
        return None
    return user
