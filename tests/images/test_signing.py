"""Signatures: the org's builds verify with the org public key; the red team's and tampered ones do not."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from trustusbank.images.signing import Keys, org_public_key, repository, verify
from trustusbank.images.store import Build, ImageStore

TAG = "localhost:5001/acme-fx/currency-converter:1.0.0"


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "signing", tmp_path / "images")


def test_payload_is_cosign_simple_signing_and_verifies_as_ecdsa_p256(keys: Keys) -> None:
    digest = Build("currency-converter", "clean").digest()
    signed = keys.org().sign(TAG, digest)
    body = json.loads(signed.payload)
    assert body["critical"] == {
        "identity": {"docker-reference": "localhost:5001/acme-fx/currency-converter"},
        "image": {"docker-manifest-digest": digest},
        "type": "cosign container image signature",
    }
    assert body["optional"]["creator"] == "trustusbank org"
    public = org_public_key(keys.public_dir)  # the exported PEM, not the in-memory key
    # An independent check with the plain primitive: ECDSA-SHA256 over the payload bytes, DER, base64.
    public.verify(base64.b64decode(signed.signature), signed.payload, ec.ECDSA(hashes.SHA256()))
    assert verify(digest, signed.signature, signed.payload, public, TAG)


def test_the_rug_pulled_build_does_not_verify_with_the_org_key(keys: Keys) -> None:
    digest = Build("currency-converter", "real-rugpull").digest()
    signed = keys.publisher("real-rugpull").sign(TAG, digest)
    assert signed.signer == "acme-fx red team"
    keys.org()
    org = org_public_key(keys.public_dir)
    assert not verify(digest, signed.signature, signed.payload, org, TAG)
    assert verify(digest, signed.signature, signed.payload, keys.red_team().public_key, TAG)


def test_tampering_fails_verification(keys: Keys) -> None:
    org = keys.org()
    clean = Build("currency-converter", "clean").digest()
    rug = Build("currency-converter", "real-rugpull").digest()
    signed = org.sign(TAG, clean)
    swapped = signed.payload.replace(clean.encode(), rug.encode())
    assert not verify(
        rug, signed.signature, swapped, org.public_key
    )  # payload edited to vouch for other bytes
    assert not verify(rug, signed.signature, signed.payload, org.public_key)  # payload names another digest
    assert not verify(clean, signed.signature, signed.payload, org.public_key, "localhost:5001/evil/x:1")
    raw = bytearray(base64.b64decode(signed.signature))
    raw[-1] ^= 1
    assert not verify(clean, base64.b64encode(bytes(raw)).decode(), signed.payload, org.public_key)
    assert not verify(clean, "not base64!", signed.payload, org.public_key)
    assert not verify(clean, signed.signature, b"{not json", org.public_key)


def test_keys_are_made_once_private_0600_and_the_org_key_is_published(keys: Keys) -> None:
    first = keys.org()
    assert keys.org().key_id == first.key_id
    assert Keys(keys.private_dir, keys.public_dir).org().key_id == first.key_id
    assert keys.red_team().key_id != first.key_id
    for name in ("org.key", "acme-fx-red-team.key"):
        assert stat.S_IMODE((keys.private_dir / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.private_dir.stat().st_mode) == 0o700
    published = (keys.public_dir / "org.pub").read_text()
    assert published.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in published
    assert not list(keys.public_dir.glob("*.key"))


def test_store_judges_signatures_with_the_org_key(tmp_path: Path, keys: Keys) -> None:
    store = ImageStore(tmp_path / "images")
    org = keys.org().public_key
    clean = store.retag(TAG, Build("currency-converter", "clean"), signer=keys.org(), actor="a", reason="r")
    assert store.signature_status(TAG, clean.new_digest, org).status == "org"
    pulled = store.retag(
        TAG, Build("currency-converter", "real-rugpull"), signer=keys.red_team(), actor="m", reason="r"
    )
    verdict = store.signature_status(TAG, pulled.new_digest, org)
    assert verdict.status == "untrusted"
    assert "acme-fx red team" in verdict.detail
    unsigned = store.retag(
        TAG, Build("currency-converter", "mock-rugpull"), signer=None, actor="m", reason="r"
    )
    assert store.signature_status(TAG, unsigned.new_digest, org).status == "unsigned"


def test_digest_changes_between_clean_and_real_rugpull_while_the_tag_stays(
    tmp_path: Path, keys: Keys
) -> None:
    store = ImageStore(tmp_path / "images")
    before = store.retag(TAG, Build("currency-converter", "clean"), signer=keys.org(), actor="a", reason="r")
    after = store.retag(
        TAG, Build("currency-converter", "real-rugpull"), signer=keys.red_team(), actor="m", reason="r"
    )
    assert before.tag == after.tag == TAG
    assert repository(TAG) == "localhost:5001/acme-fx/currency-converter"
    assert before.new_digest != after.new_digest
    assert store.resolve(TAG).digest == after.new_digest
