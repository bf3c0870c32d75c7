"""On the embedded cluster: a policy file damaged on disk never lifts the DENY it held.

A DENY is applied with `trustusbank apply -f`; then its file in the applied set is garbled in
place, as a disk or a careless hand would leave it (past `apply`, which refuses such a file).
Every node proxy must refuse the change, say so in its log, and keep denying; `apply -f` of
the garbled file is refused outright. The DENY is deleted again afterwards.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.system.conftest import Cluster
from tests.system.fx_tunnel import denied_again, deny_account_mcp, fx_tunnels, served_again
from trustusbank.mesh.hbone import HboneRefused

NAME = "test-damaged-deny-account-mcp-to-fx-api"
POLICY = deny_account_mcp(NAME)
GARBLED = "apiVersion: security.istio.io/v1\nkind: [AuthorizationPol"
REFUSED = "policy set unreadable, keeping the last good one: {path}"


async def test_a_garbled_policy_file_keeps_its_deny_in_force(cluster: Cluster, tmp_path: Path) -> None:
    tunnel = fx_tunnels(cluster, tmp_path)
    policy = tmp_path / f"{NAME}.yaml"
    policy.write_text(POLICY)
    installed = cluster.files.applied / policy.name
    logs = [cluster.files.ztunnel_log(n.name) for n in cluster.topology.nodes]
    marks = {log: log.stat().st_size for log in logs}

    applied = await asyncio.to_thread(cluster.cli, "apply", "-f", str(policy))
    assert applied.returncode == 0, applied.stderr
    try:
        await denied_again(tunnel)  # the DENY is in the last good set of fx-api's node proxy
        installed.write_text(GARBLED)
        refusal = REFUSED.format(path=installed)
        cluster.wait_for(
            lambda: all(refusal in log.read_text()[marks[log] :] for log in logs),
            what="every node proxy refusing the garbled policy set",
        )
        with pytest.raises(HboneRefused) as refused:
            await tunnel()
        assert refused.value.status == 401  # the DENY still holds

        policy.write_text(GARBLED)
        rejected = await asyncio.to_thread(cluster.cli, "apply", "-f", str(policy))
        assert rejected.returncode == 1
        assert rejected.stderr.startswith("error: nothing was applied:")
        assert "Traceback" not in rejected.stderr
        assert installed.read_text() == GARBLED  # refused before anything changed
    finally:
        deleted = await asyncio.to_thread(cluster.cli, "delete", "-f", str(policy))
        assert deleted.returncode == 0, deleted.stderr
    await served_again(tunnel)  # put back: fx-api serves account-mcp again
