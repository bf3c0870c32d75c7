"""Image signatures: who vouches for the bytes behind a digest, checked with the org's public key.

A tag says nothing about who built what is behind it; a signature over the
digest does, if it verifies with a key the bank trusts. The payload is
cosign's "simple signing" JSON (the image's repository and manifest digest),
signed with ECDSA P-256 over SHA-256 and carried as base64 of the DER
signature, as cosign stores it. The bank's pipeline signs with the org key;
the rug-pulled builds come signed by a key the bank has never seen (the
seed's phase 404, "acme-fx red team"), so they read as signed, but untrusted.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_TYPE = "cosign container image signature"
ORG_KEY = "org"
ORG_SIGNER = "trustusbank org"
RED_TEAM_KEY = "acme-fx-red-team"
RED_TEAM_SIGNER = "acme-fx red team"
ORG_PUBLIC_KEY = "org.pub"
# Builds that only ever come out of the attacker's pipeline.
UNTRUSTED_VARIANTS = frozenset({"mock-rugpull", "real-rugpull"})


def repository(ref: str) -> str:
    """`registry/path:tag` or `registry/path@digest` -> `registry/path` (cosign's docker-reference)."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def simple_signing_payload(ref: str, digest: str, optional: dict[str, Any] | None = None) -> bytes:
    body = {
        "critical": {
            "identity": {"docker-reference": repository(ref)},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def public_key_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


@dataclass(frozen=True)
class Signed:
    payload: bytes
    signature: str  # base64 of the DER ECDSA signature over the payload
    signer: str
    key_id: str


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, ref: str, digest: str, optional: dict[str, Any] | None = None) -> Signed:
        payload = simple_signing_payload(ref, digest, {"creator": self.name, **(optional or {})})
        raw = self.private_key.sign(payload, ec.ECDSA(hashes.SHA256()))
        return Signed(payload, base64.b64encode(raw).decode(), self.name, self.key_id)


def verify(
    digest: str,
    signature: str,
    payload: bytes,
    public_key: ec.EllipticCurvePublicKey,
    ref: str | None = None,
) -> bool:
    """Whether `public_key` signed `payload`, and the payload vouches for `digest` (and `ref`'s
    repository, when given). Anything malformed is a failed verification, never an exception."""
    try:
        body = json.loads(payload)
        critical = body["critical"]
        if critical["type"] != SIGNATURE_TYPE or critical["image"]["docker-manifest-digest"] != digest:
            return False
        if ref is not None and critical["identity"]["docker-reference"] != repository(ref):
            return False
        public_key.verify(base64.b64decode(signature, validate=True), payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
    return True


def claimed_creator(payload: bytes) -> str | None:
    """Who the payload says made it: unverified, for display next to a verdict only."""
    with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
        creator = (json.loads(payload).get("optional") or {}).get("creator")
        return str(creator) if creator else None
    return None


def _load_or_create(path: Path, name: str) -> Signer:
    """The key at `path`, generated (0600) on first use; safe when two processes race to create it."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an EC private key")
    return Signer(name, loaded)


@dataclass(frozen=True)
class Keys:
    """The two signing keys of a state directory, and where the org's public half is published."""

    private_dir: Path
    public_dir: Path

    def org(self) -> Signer:
        signer = _load_or_create(self.private_dir / f"{ORG_KEY}.key", ORG_SIGNER)
        published = self.public_dir / ORG_PUBLIC_KEY
        pem = public_key_pem(signer.public_key)
        if not published.exists() or published.read_bytes() != pem:
            self.public_dir.mkdir(parents=True, exist_ok=True)
            tmp = published.with_name(f".{published.name}.{os.getpid()}.tmp")
            tmp.write_bytes(pem)
            tmp.replace(published)
        return signer

    def red_team(self) -> Signer:
        return _load_or_create(self.private_dir / f"{RED_TEAM_KEY}.key", RED_TEAM_SIGNER)

    def publisher(self, variant: str) -> Signer:
        """Who signs a build when it is pushed: the bank's pipeline, unless only the attacker makes it."""
        return self.red_team() if variant in UNTRUSTED_VARIANTS else self.org()


def org_public_key(public_dir: Path) -> ec.EllipticCurvePublicKey:
    return load_public_key((public_dir / ORG_PUBLIC_KEY).read_bytes())
