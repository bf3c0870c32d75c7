"""`trustusbank mesh istiod` as a real process: killed with SIGKILL, it comes back as the same CA.

A node proxy holding an SVID keeps it while istiod is gone (its rotation fails, the SVID
stays), and the SVID istiod signs once it is back verifies against the trust bundle the
node proxy loaded before the crash: the root is read from the state directory, not made anew.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import trustusbank.mesh.identity.istiod as istiod_module
from tests.mesh.identity.test_istiod import CONVERTER, NODE, topology
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Node
from trustusbank.mesh.identity import SecretManager
from trustusbank.mesh.identity.istiod import CsrClient, answers, issue_node_token
from trustusbank.mesh.identity.svid import utcnow


@pytest.fixture
def files() -> Iterator[ClusterFiles]:
    with tempfile.TemporaryDirectory(prefix="tub-") as short:  # Unix socket paths must stay short
        files = ClusterFiles(Path(short))
        files.make()
        topo = topology()
        topo.nodes.append(Node(NODE, "worker", 1, "127.91.1.1"))
        topo.save(files.topology)
        yield files


async def start(files: ClusterFiles) -> asyncio.subprocess.Process:
    env = {**os.environ, "TRUSTUSBANK_STATE_DIR": str(files.state), "TRUSTUSBANK_SVID_TTL_SECONDS": "60"}
    with files.istiod_log.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "trustusbank", "mesh", "istiod"), env=env, stdout=log, stderr=log
        )
    while not await answers(files.istiod_socket):
        assert proc.returncode is None, files.istiod_log.read_text()
        await asyncio.sleep(0.05)
    return proc


async def test_a_killed_istiod_comes_back_as_the_same_ca_and_nodes_keep_their_svids(
    files: ClusterFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issue_node_token(files.node_dir(NODE) / "token")
    now = [utcnow()]
    istiod = await start(files)
    try:
        bundle = files.trust_bundle.read_bytes()
        secrets = SecretManager(
            CsrClient(files.istiod_socket, NODE, token), bundle, files.state / "certs", clock=lambda: now[0]
        )
        first = await secrets.get(CONVERTER)

        istiod.send_signal(signal.SIGKILL)
        await istiod.wait()
        monkeypatch.setattr(istiod_module, "CSR_TIMEOUT", 0.5)
        now[0] = first.not_after - timedelta(seconds=10)  # past half-life: due for rotation
        assert await secrets.get(CONVERTER) is first, "the rotation failed; the current SVID stays"

        istiod = await start(files)
        assert files.trust_bundle.read_bytes() == bundle, "the same root, not a new one"
        second = await secrets.get(CONVERTER)  # checked against the bundle loaded before the crash
        assert second.cert_pem != first.cert_pem, "re-issued"  # (X.509 times are whole seconds)
        assert secrets.cached(CONVERTER) is second
    finally:
        istiod.kill()
        await istiod.wait()


async def test_a_caller_without_a_token_file_is_refused(files: ClusterFiles) -> None:
    istiod = await start(files)
    try:
        with pytest.raises(PermissionError, match="is not authenticated"):
            await SecretManager(
                CsrClient(files.istiod_socket, NODE, ""), files.trust_bundle.read_bytes(), files.state / "c"
            ).get(CONVERTER)
    finally:
        istiod.kill()
        await istiod.wait()


async def test_a_node_proxy_starting_while_istiod_is_away_has_no_identity_to_serve_with(
    files: ClusterFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: with no SVID there is no TLS context, so no listener and no tunnel (ztunnel
    opens a pod's listeners only once it holds its SVID); the CSR is answered once istiod is back."""
    token = issue_node_token(files.node_dir(NODE) / "token")
    istiod = await start(files)  # once, for the trust bundle a node proxy starts with
    bundle = files.trust_bundle.read_bytes()
    istiod.kill()
    await istiod.wait()
    secrets = SecretManager(CsrClient(files.istiod_socket, NODE, token), bundle, files.state / "certs")
    monkeypatch.setattr(istiod_module, "CSR_TIMEOUT", 0.3)
    with pytest.raises(TimeoutError):
        await secrets.get(CONVERTER)
    with pytest.raises(LookupError):
        secrets.ssl_server_context(CONVERTER)
    monkeypatch.setattr(istiod_module, "CSR_TIMEOUT", 30.0)
    waiting = asyncio.create_task(secrets.get(CONVERTER))  # asked while istiod is still away
    istiod = await start(files)
    try:
        assert (await waiting).identity == CONVERTER
        assert secrets.ssl_server_context(CONVERTER) is not None
    finally:
        istiod.kill()
        await istiod.wait()
