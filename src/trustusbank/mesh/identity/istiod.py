"""istiod's certificate role: sign node proxies' CSRs for the identities of their own pods.

A node proxy proves which node it is with a per-node token, and may only obtain
SVIDs for service accounts of pods scheduled on that node, as istiod checks a
ztunnel's requests. A waypoint (`waypoint:<ns>/<gateway>`) gets only its own.
The protocol is one JSON object per line over a Unix socket (real istiod
speaks gRPC); the checks are the point, not the framing.

istiod runs as its own process (`trustusbank mesh istiod`, istiod_process.py), so it
can die and come back: a client that finds nobody listening tries again until its
deadline, and a node proxy meanwhile keeps the SVIDs it holds.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from trustusbank.cluster.topology import Topology
from trustusbank.errors import UnavailableError
from trustusbank.mesh.identity.ca import CertificateAuthority
from trustusbank.mesh.identity.spiffe import SpiffeId

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
CSR_TIMEOUT = 10.0  # seconds for one CSR round trip; the caller keeps its current SVID meanwhile
RECONNECT_PAUSE = 0.1  # seconds between attempts to reach an istiod that is (re)starting
PING = {"op": "ping"}  # the readiness check: answered without a token, and never logged


def issue_node_token(path: Path) -> str:
    """A fresh credential for one node proxy, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(token)
    return token


WAYPOINT_PREFIX = "waypoint:"


def allowed_identities(topo: Topology, caller: str) -> set[tuple[str, str]]:
    """The (namespace, service account) pairs a node proxy or a waypoint may hold."""
    if caller.startswith(WAYPOINT_PREFIX):
        pod = topo.waypoint(caller.removeprefix(WAYPOINT_PREFIX))
        return {(pod.namespace, pod.service_account)} if pod else set()
    return {(p.namespace, p.service_account) for p in topo.pods_on(caller) if p.role == "workload"}


class Istiod:
    def __init__(
        self,
        ca: CertificateAuthority,
        topology: Callable[[], Topology],
        tokens: dict[str, str],
        ttl: timedelta,
    ) -> None:
        self.ca = ca
        self.topology = topology
        self.tokens = tokens
        self.ttl = ttl

    def sign(self, request: dict[str, Any]) -> bytes:
        node = str(request.get("node", ""))
        expected = self.tokens.get(node)
        if expected is None or not hmac.compare_digest(expected, str(request.get("token", ""))):
            raise PermissionError(f"node {node!r} is not authenticated")
        identity = SpiffeId.parse(str(request.get("identity", "")))
        topo = self.topology()
        if identity.trust_domain != topo.trust_domain:
            raise PermissionError(f"{identity} is outside trust domain {topo.trust_domain}")
        if (identity.namespace, identity.service_account) not in allowed_identities(topo, node):
            raise PermissionError(f"{node} may not hold identity {identity}")
        return self.ca.sign_csr(str(request["csr"]).encode(), identity, self.ttl)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if len(line) > MAX_REQUEST:
                raise ValueError("request too large")
            request = json.loads(line)
            if request == PING:
                answer: dict[str, Any] = {"ok": True}
            else:
                answer = {"cert": self.sign(request).decode()}
                log.info("signed %s for node %s", request.get("identity"), request.get("node"))
        except (PermissionError, ValueError, KeyError, json.JSONDecodeError) as exc:
            log.warning("refused CSR: %s", exc)
            answer = {"error": str(exc)}
        except Exception as exc:  # refuse, never leave a node proxy waiting for an answer
            log.exception("signing failed")
            answer = {"error": f"signing failed: {type(exc).__name__}"}
        try:
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except ConnectionError:
            pass  # the caller gave up first
        finally:
            writer.close()

    async def serve(self, socket_path: Path) -> asyncio.Server:
        """Listen on a Unix socket only its owner can use: node tokens travel over it."""
        _remove(socket_path)
        server = await asyncio.start_unix_server(self._handle, path=str(socket_path), limit=MAX_REQUEST)
        os.chmod(socket_path, 0o600)
        return server


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


class IstiodGone(UnavailableError, ConnectionError):
    """Nobody listens on istiod's socket, or istiod died between our request and its answer."""


async def _exchange(socket_path: Path, request: dict[str, Any]) -> bytes:
    """One request, one answer line; IstiodGone when there is no istiod to give one."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=MAX_REQUEST)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise IstiodGone(str(exc)) from exc
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await reader.readline()
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise IstiodGone(f"istiod went away mid-request: {exc}") from exc
    finally:
        writer.close()
    if not line:
        raise IstiodGone("istiod closed the connection without answering")
    return line


async def _ask(socket_path: Path, request: dict[str, Any], *, patient: bool) -> bytes:
    """One request, one answer line. `patient`: an istiod that is not there (restarting, or killed
    while it held our request) is asked again until the caller's deadline, so a node proxy asking
    while istiod restarts waits for it, with the SVIDs it holds still served, rather than failing.
    Asking again is safe: signing a CSR twice hands out nothing new (the key never left us)."""
    attempts = 0
    while True:
        try:
            return await _exchange(socket_path, request)
        except IstiodGone as exc:
            if not patient:
                raise
            if attempts == 0:  # said once per request
                log.warning("istiod is not answering (%s); the current SVIDs stay, retrying", exc)
            attempts += 1
            await asyncio.sleep(RECONNECT_PAUSE)


async def answers(socket_path: Path, timeout: float = 1.0) -> bool:  # noqa: ASYNC109 - a probe's bound
    """Whether an istiod serves on `socket_path`: the supervisor's readiness probe."""
    try:
        async with asyncio.timeout(timeout):
            line = await _ask(socket_path, PING, patient=False)
        return bool(json.loads(line).get("ok"))
    except (TimeoutError, OSError, ValueError):
        return False


class CsrClient:
    """The node proxy's side: ask istiod to sign a CSR for one of this node's identities."""

    def __init__(self, socket_path: Path, node: str, token: str) -> None:
        self.socket_path = socket_path
        self.node = node
        self.token = token

    async def __call__(self, identity: SpiffeId, csr_pem: bytes) -> bytes:
        request = {"node": self.node, "token": self.token, "identity": identity.uri, "csr": csr_pem.decode()}
        async with asyncio.timeout(CSR_TIMEOUT):  # a stuck or absent istiod is an error, never a wait forever
            line = await _ask(self.socket_path, request, patient=True)
        answer = json.loads(line)
        if "error" in answer:
            raise PermissionError(f"istiod refused {identity}: {answer['error']}")
        return str(answer["cert"]).encode()
