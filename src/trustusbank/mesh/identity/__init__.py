"""Workload identity: SPIFFE IDs, the mesh CA (istiod's role) and the node proxy's SVID cache."""

from __future__ import annotations

from trustusbank.mesh.identity.ca import CertificateAuthority, CsrError
from trustusbank.mesh.identity.secrets import SecretManager, Signer
from trustusbank.mesh.identity.spiffe import TRUST_DOMAIN, SpiffeId
from trustusbank.mesh.identity.svid import Svid, identity_from_cert, new_key_and_csr, peer_identity

__all__ = [
    "TRUST_DOMAIN",
    "CertificateAuthority",
    "CsrError",
    "SecretManager",
    "Signer",
    "SpiffeId",
    "Svid",
    "identity_from_cert",
    "new_key_and_csr",
    "peer_identity",
]
