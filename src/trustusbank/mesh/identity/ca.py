"""The mesh's certificate authority: istiod's signing role.

One self-signed ECDSA P-256 root, persisted so that restarts keep the trust
bundle (and therefore every issued SVID) valid. Leaves are signed from CSRs so
that workload keys never leave the node proxy, and the CA — not the requester —
decides the identity: whatever names a CSR asks for are ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustusbank.errors import RefusedError
from trustusbank.mesh.identity.spiffe import TRUST_DOMAIN, SpiffeId
from trustusbank.mesh.identity.svid import Svid, new_key_and_csr, utcnow

ROOT_KEY_FILE = "root-key.pem"
ROOT_CERT_FILE = "root-cert.pem"
ROOT_LIFETIME = timedelta(days=3650)
# Backdating absorbs clock skew between the CA and the peers that verify its certificates.
# Leaves are backdated by at most a tenth of their ttl, so that short test ttls still put
# the half-life (the rotation point) after the moment of issue.
BACKDATE = timedelta(seconds=60)
MIN_RSA_BITS = 2048


class CsrError(RefusedError, ValueError):
    """The CSR or the request to sign it is unacceptable."""


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` atomically, never readable by others even transiently."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise create-or-load between processes so two starters never mint two roots."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _acceptable_key(key: object) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """Only keys every TLS 1.3 peer handles and that are strong enough: EC P-256 or RSA >= 2048."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CsrError(f"EC key on curve {key.curve.name} refused; only P-256 is accepted")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CsrError(f"RSA key of {key.key_size} bits refused; at least {MIN_RSA_BITS} required")
        return key
    raise CsrError(f"key type {type(key).__name__} refused; use ECDSA P-256 or RSA >= 2048")


class CertificateAuthority:
    """Signs workload SVIDs for one trust domain under a persisted root."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, trust_domain: str = TRUST_DOMAIN
    ) -> None:
        if key.public_key() != cert.public_key():
            raise ValueError("root key does not match root certificate")
        self._key = key
        self.root_cert = cert
        self.trust_domain = trust_domain

    @classmethod
    def load_or_create(cls, directory: Path, trust_domain: str = TRUST_DOMAIN) -> CertificateAuthority:
        """Reuse the root in `directory`, or create and persist one (key mode 0600)."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path, cert_path = directory / ROOT_KEY_FILE, directory / ROOT_CERT_FILE
        with _locked(directory):
            if key_path.exists() and cert_path.exists():
                os.chmod(key_path, 0o600)
                key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
                if not isinstance(key, ec.EllipticCurvePrivateKey):
                    raise ValueError(f"{key_path} is not an EC private key")
                cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
                return cls(key, cert, trust_domain)
            key, cert = cls._new_root(trust_domain)
            key_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            _write_private(key_path, key_pem, 0o600)
            _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
            return cls(key, cert, trust_domain)

    @staticmethod
    def _new_root(trust_domain: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
                x509.NameAttribute(NameOID.COMMON_NAME, "trustusbank mesh root CA"),
            ]
        )
        now = utcnow()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + ROOT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    @property
    def trust_bundle_pem(self) -> bytes:
        """The PEM every peer trusts; leaves are verified against this root alone."""
        return self.root_cert.public_bytes(serialization.Encoding.PEM)

    def sign_csr(self, csr_pem: bytes, identity: SpiffeId, ttl: timedelta) -> bytes:
        """Sign a leaf for `identity` over the CSR's key; returns the leaf PEM only."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise CsrError(f"unreadable CSR: {exc}") from exc
        if not csr.is_signature_valid:
            raise CsrError("CSR signature does not verify")
        if identity.trust_domain != self.trust_domain:
            raise CsrError(f"{identity} is outside trust domain {self.trust_domain}")
        if ttl <= timedelta(0):
            raise CsrError("ttl must be positive")
        public_key = _acceptable_key(csr.public_key())
        now = utcnow()
        not_after = min(now + ttl, self.root_cert.not_valid_after_utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.root_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - min(BACKDATE, ttl / 10))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            # An empty subject makes the SAN the only name, so it must be critical (RFC 5280 4.2.1.6).
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]), critical=True
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, identity: SpiffeId, ttl: timedelta) -> Svid:
        """Mint a key and sign it here: for tests and tooling; node proxies send CSRs instead."""
        key_pem, csr_pem = new_key_and_csr(identity)
        return Svid.from_pem(self.sign_csr(csr_pem, identity, ttl), key_pem)
