"""X.509 SVIDs: a workload's certificate and key, and reading SPIFFE IDs back out of certificates.

The peer's identity is taken from the verified certificate's single URI SAN and
nothing else (not the subject, not SNI), as Istio does.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustusbank.mesh.identity.spiffe import SpiffeId


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Svid:
    """One issued identity. `key_pem` is kept out of repr so that logging an Svid never leaks it."""

    identity: SpiffeId
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> Svid:
        """Build from PEMs, checking the cert carries a SPIFFE ID and matches the key."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        identity = identity_from_cert(cert)
        if identity is None:
            raise ValueError("certificate carries no single valid SPIFFE URI SAN")
        key = serialization.load_pem_private_key(key_pem, password=None)
        if key.public_key() != cert.public_key():
            raise ValueError("certificate does not match the private key")
        return cls(identity, cert_pem, key_pem, cert.not_valid_before_utc, cert.not_valid_after_utc)

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before

    def remaining(self, now: datetime | None = None) -> timedelta:
        return self.not_after - (now or utcnow())

    def expired(self, now: datetime | None = None) -> bool:
        return self.remaining(now) <= timedelta(0)

    def should_rotate(self, now: datetime | None = None) -> bool:
        """True once half the lifetime has passed, leaving the other half to survive a slow CA."""
        return (now or utcnow()) >= self.not_before + self.lifetime / 2


def new_key_and_csr(identity: SpiffeId) -> tuple[bytes, bytes]:
    """A fresh ECDSA P-256 key (PKCS#8 PEM) and a CSR for it with `identity` as its URI SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def identity_from_cert(cert: bytes | x509.Certificate) -> SpiffeId | None:
    """The SPIFFE ID of a certificate (DER or PEM): its only URI SAN, or None if not exactly one valid."""
    if isinstance(cert, bytes):
        try:
            if cert.lstrip().startswith(b"-----BEGIN"):
                cert = x509.load_pem_x509_certificate(cert)
            else:
                cert = x509.load_der_x509_certificate(cert)
        except ValueError:
            return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1:
        return None
    try:
        return SpiffeId.parse(uris[0])
    except ValueError:
        return None


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> SpiffeId | None:
    """The verified peer's SPIFFE ID on an established TLS connection, None without one."""
    der = ssl_object.getpeercert(binary_form=True)
    return identity_from_cert(der) if der else None
