"""A mesh client as account-mcp, tunnelling to fx-api: the system tests' probe of a policy in force.

An SVID from the cluster's own CA, HBONE to fx-api's node proxy: what a policy on fx-api
allows or refuses is seen exactly as a pod would see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from tests.session_cluster import Cluster
from trustusbank.mesh.hbone import HboneRefused, Tunnel, client_context, open_tunnel
from trustusbank.mesh.identity import CertificateAuthority, SpiffeId

ACCOUNT_MCP = SpiffeId("cluster.local", "trustusbank-bank-mcp", "account-mcp")
FX_API = SpiffeId("cluster.local", "external-fx", "fx-api")
DEADLINE = 20  # a guard against hanging, never an assertion about speed


def deny_account_mcp(name: str) -> str:
    """An AuthorizationPolicy `name` denying account-mcp at fx-api."""
    return f"""\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {name}
  namespace: external-fx
spec:
  selector:
    matchLabels:
      app: fx-api
  action: DENY
  rules:
    - from:
        - source:
            principals: ["cluster.local/ns/trustusbank-bank-mcp/sa/account-mcp"]
"""


def fx_tunnels(cluster: Cluster, tmp_path: Path) -> Callable[[], Awaitable[Tunnel]]:
    """A function that opens one more tunnel from account-mcp to fx-api's app port."""
    ca = CertificateAuthority.load_or_create(cluster.files.ca)
    svid = ca.issue(ACCOUNT_MCP, timedelta(minutes=5))
    (tmp_path / "cert.pem").write_bytes(svid.cert_pem)
    (tmp_path / "key.pem").write_bytes(svid.key_pem)
    context = client_context(
        tmp_path / "cert.pem", tmp_path / "key.pem", cluster.files.trust_bundle.read_bytes()
    )
    fx_ip = next(p.ip for p in cluster.topology.pods if p.deployment == "fx-api")

    async def tunnel() -> Tunnel:
        return await open_tunnel(
            fx_ip, 15008, authority=f"{fx_ip}:8080", ssl_context=context, expected_identity=FX_API
        )

    return tunnel


async def served_again(tunnel: Callable[[], Awaitable[Tunnel]]) -> None:
    """Until fx-api serves account-mcp again: how a test that denied it puts the cluster back."""
    async with asyncio.timeout(DEADLINE):
        while True:
            try:
                await (await tunnel()).close()
                return
            except HboneRefused:
                await asyncio.sleep(0.1)


async def denied_again(tunnel: Callable[[], Awaitable[Tunnel]]) -> None:
    """Until fx-api refuses account-mcp: `apply -f` returns before every node proxy has read the
    DENY, and a test that then changes the DENY's file must start from a DENY in force."""
    async with asyncio.timeout(DEADLINE):
        while True:
            try:
                await (await tunnel()).close()
            except HboneRefused:
                return
            await asyncio.sleep(0.1)
