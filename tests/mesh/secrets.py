"""A SecretManager signed by a test CA, as istiod would sign: the one way the mesh tests get SVIDs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from trustusbank.mesh.identity import CertificateAuthority, SecretManager, SpiffeId

SVID_TTL = timedelta(hours=1)


def signer_for(ca: CertificateAuthority) -> Callable[[SpiffeId, bytes], Awaitable[bytes]]:
    """istiod's part: sign a workload's CSR for its identity, for an hour."""

    async def sign(identity: SpiffeId, csr_pem: bytes) -> bytes:
        return ca.sign_csr(csr_pem, identity, SVID_TTL)

    return sign


async def secrets_for(ca: CertificateAuthority, directory: Path, *identities: SpiffeId) -> SecretManager:
    """A SecretManager under `directory` holding a fresh SVID for each of `identities`."""
    manager = SecretManager(signer_for(ca), ca.trust_bundle_pem, directory)
    for identity in identities:
        await manager.get(identity)
    return manager
