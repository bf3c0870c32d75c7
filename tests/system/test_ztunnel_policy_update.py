"""On the embedded cluster: `trustusbank apply -f` a DENY, and a tunnel opened before it is cut.

The tunnel is a real mesh client's: an SVID from the cluster's CA, HBONE to fx-api's
node proxy, an HTTP/1.1 keep-alive connection to the app with a second request under
way. Applying the DENY must close it (ztunnel's PolicyWatcher), not only refuse the
next tunnel; the access log says why. The policy is deleted again afterwards.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.system.conftest import Cluster
from tests.system.fx_tunnel import ACCOUNT_MCP, DEADLINE, deny_account_mcp, fx_tunnels, served_again
from trustusbank.mesh.hbone import HboneError, HboneRefused, Tunnel

NAME = "test-deny-account-mcp-to-fx-api"
POLICY = deny_account_mcp(NAME)
REQUEST = b"GET /latest?from=GBP&to=USD HTTP/1.1\r\nHost: fx-api\r\n\r\n"


async def _answer(tunnel: Tunnel) -> bytes:
    data = b""
    async with asyncio.timeout(DEADLINE):
        while b"1.27" not in data:
            chunk = await tunnel.read()
            assert chunk, f"fx-api ended the connection: {data!r}"
            data += chunk
    return data


async def test_applying_a_deny_closes_the_open_tunnel_it_denies(cluster: Cluster, tmp_path: Path) -> None:
    tunnel = fx_tunnels(cluster, tmp_path)
    policy = tmp_path / f"{NAME}.yaml"
    policy.write_text(POLICY)
    held = await tunnel()
    await held.write(REQUEST)
    assert b"200 OK" in await _answer(held)
    await held.write(b"GET /latest HTTP/1.1\r\n")  # the next request under way: no idle timeout applies

    applied = await asyncio.to_thread(cluster.cli, "apply", "-f", str(policy))
    assert applied.returncode == 0, applied.stderr
    try:
        async with asyncio.timeout(DEADLINE):
            with pytest.raises(HboneError, match="reset by peer"):
                await held.read()
        with pytest.raises(HboneRefused) as refused:
            await tunnel()
        assert refused.value.status == 401
        closed = cluster.wait_for(
            lambda: [
                r
                for r in cluster.access_log()
                if r.get("src.identity") == ACCOUNT_MCP.uri
                and r.get("error")
                == f"connection closed due to policy change: explicitly denied by: external-fx/{NAME}"
            ],
            what="the access-log line of the closed tunnel",
        )
        assert closed[-1]["dst.workload"] == "fx-api-0"
        assert closed[-1]["bytes_sent"] > len(REQUEST), "both requests reached the app before the cut"
    finally:
        await held.close()
        deleted = await asyncio.to_thread(cluster.cli, "delete", "-f", str(policy))
        assert deleted.returncode == 0, deleted.stderr
    await served_again(tunnel)  # put back: fx-api serves account-mcp again
