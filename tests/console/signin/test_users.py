"""The provider's users: each signs in with the write-up's password, nothing else does."""

from __future__ import annotations

import pytest

from trustusbank.console.signin.users import USERS, authenticate


@pytest.mark.parametrize(
    ("email", "password", "groups"),
    [
        ("admin@kagent.local", "admin", ("admins",)),
        ("auditor@trustusbank.local", "auditor", ("auditors",)),
        ("customer@trustusbank.local", "customer", ("customers",)),
    ],
)
def test_each_user_signs_in_with_their_password_only(
    email: str, password: str, groups: tuple[str, ...]
) -> None:
    user = authenticate(email, password)
    assert user is not None
    assert (user.email, user.groups) == (email, groups)
    assert authenticate(f" {email.upper()} ", password) == user  # an e-mail as typed
    assert authenticate(email, password.upper()) is None
    assert authenticate(email, "") is None


def test_an_unknown_email_or_another_users_password_is_refused() -> None:
    assert authenticate("nobody@kagent.local", "admin") is None
    assert authenticate("auditor@trustusbank.local", "admin") is None


def test_only_digests_are_kept_each_with_its_own_salt() -> None:
    assert len({u.salt for u in USERS}) == len(USERS)
    assert all(len(u.digest) == 32 and u.digest not in (b"admin", b"auditor", b"customer") for u in USERS)
    assert len({u.subject for u in USERS}) == len(USERS)
