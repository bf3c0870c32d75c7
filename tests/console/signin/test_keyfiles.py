"""The chain's secrets: made once, owner-only, the same on the next start; a readable one refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from trustusbank.console.signin.keyfiles import cookie_secret, secret_file, signin_dir, signing_key
from trustusbank.errors import ConfigError


def test_secrets_are_made_once_owner_only_and_kept(tmp_path: Path) -> None:
    folder = signin_dir(tmp_path / "state")
    key, cookie = signing_key(folder), cookie_secret(folder)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {
        "signing-key.pem": 0o600,
        "cookie-secret": 0o600,
    }
    assert (signing_key(folder).kid, cookie_secret(folder)) == (key.kid, cookie)
    assert key.kid == key.thumbprint()
    assert len(cookie) == 32


def test_a_secret_others_may_read_is_refused(tmp_path: Path) -> None:
    folder = signin_dir(tmp_path)
    cookie_secret(folder)
    (folder / "cookie-secret").chmod(0o644)
    with pytest.raises(ConfigError, match="may be read by others"):
        cookie_secret(folder)


def test_a_secret_another_process_wrote_first_is_the_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "secret"

    def make() -> bytes:
        # Another process links its secret into place while this one is still writing its own.
        other = tmp_path / "theirs"
        other.write_bytes(b"theirs")
        other.chmod(0o600)
        os.link(other, path)
        return b"mine"

    assert secret_file(path, make) == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret", "theirs"]  # no scratch file left
