"""HBONE: TCP tunnelled as HTTP/2 CONNECT over mutual TLS 1.3, Istio ambient's port-15008 transport."""

from __future__ import annotations

from trustusbank.cluster.ports import HBONE_PORT
from trustusbank.mesh.hbone.client import Tunnel, open_tunnel
from trustusbank.mesh.hbone.h2 import ByteStream, HboneError, HboneRefused, HboneStream, HboneUnsent, pipe
from trustusbank.mesh.hbone.pool import HbonePool, PoolKey
from trustusbank.mesh.hbone.server import (
    Authority,
    HboneRequest,
    ServerStats,
    parse_authority,
    serve,
    shutdown,
)
from trustusbank.mesh.identity.tls import ALPN_H2, client_context, server_context

__all__ = [
    "ALPN_H2",
    "HBONE_PORT",
    "Authority",
    "ByteStream",
    "HboneError",
    "HbonePool",
    "HboneRefused",
    "HboneRequest",
    "HboneStream",
    "HboneUnsent",
    "PoolKey",
    "ServerStats",
    "Tunnel",
    "client_context",
    "open_tunnel",
    "parse_authority",
    "pipe",
    "serve",
    "server_context",
    "shutdown",
]
