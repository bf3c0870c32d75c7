"""TLS contexts for HBONE: TLS 1.3 only, mutual, h2, trusting the mesh bundle and nothing else.

Hostname checks are off on purpose: mesh peers are named by the SPIFFE ID in their
certificate's URI SAN, which the HBONE client compares itself after the handshake.
"""

from __future__ import annotations

import ssl
from pathlib import Path

ALPN_H2 = "h2"

StrPath = str | Path


def _context(
    server_side: bool, cert_file: StrPath, key_file: StrPath | None, bundle_pem: bytes
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    # Only the mesh root: no load_default_certs(), so no public CA can vouch for a peer.
    context.load_verify_locations(cadata=bundle_pem.decode("ascii"))
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols([ALPN_H2])
    return context


def server_context(cert_file: StrPath, key_file: StrPath | None, bundle_pem: bytes) -> ssl.SSLContext:
    """Server side of port 15008: a client certificate from the bundle is required."""
    return _context(True, cert_file, key_file, bundle_pem)


def client_context(cert_file: StrPath, key_file: StrPath | None, bundle_pem: bytes) -> ssl.SSLContext:
    """Client side: presents our SVID, verifies the server against the bundle only."""
    return _context(False, cert_file, key_file, bundle_pem)
