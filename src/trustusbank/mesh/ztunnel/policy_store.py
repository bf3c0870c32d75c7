"""The policies a node proxy enforces, reloaded when deploy/ or the applied set changes.

Reloading is how `policies on|off` reach a running node without a restart.
A change that cannot be read (a file garbled, cut short or invalid) is refused and
the last good set stays in force, as ztunnel keeps its last xDS state when istiod
sends nothing usable: the refusal is logged, never read as "no policy". Only a node
that has never read a good set has nothing to keep: it denies everything until it can.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.watch import ManifestWatch
from trustusbank.manifests.istio.objects import AuthorizationPolicy, Connection, PeerAuthentication, Workload
from trustusbank.manifests.manifest import ManifestError
from trustusbank.mesh.authz.evaluate import Decision, authorize

log = logging.getLogger(__name__)
# What this store logs on each reload, read by `runtime/defence.py` to know a change is in force.
LOADED = "policies loaded:"
UNREADABLE = "policy set unreadable"
KEPT = f"{UNREADABLE}, keeping the last good one:"
DENY_ALL = f"{UNREADABLE}, denying all:"


class PolicyStore:
    def __init__(self, deploy: Path, files: ClusterFiles) -> None:
        self.watch = ManifestWatch(deploy, files)
        self.authorization: list[AuthorizationPolicy] = []
        self.peer_authentication: list[PeerAuthentication] = []
        self.error: str | None = None  # set while there is no good set at all: every connection is denied
        self.refused: str | None = None  # the last change refused, while the set before it stays in force
        self._loaded = False

    def reload_if_changed(self) -> bool:
        if not self.watch.changed():
            return False
        try:
            bundle = self.watch.load()
            authorization = AuthorizationPolicy.all_in(bundle.objects)
            peer_authentication = [
                PeerAuthentication.from_manifest(m) for m in bundle.objects if m.kind == "PeerAuthentication"
            ]
        except (ManifestError, ValueError, KeyError) as exc:
            if self._loaded:
                self.refused = f"{KEPT} {exc}"
                log.error(self.refused)
            else:
                self.error = f"{DENY_ALL} {exc}"
                log.error(self.error)
            return True
        self.authorization, self.peer_authentication = authorization, peer_authentication
        self.error = self.refused = None
        self._loaded = True
        log.info(f"{LOADED} %s", ", ".join(p.ref for p in self.authorization) or "no AuthorizationPolicy")
        return True


class PolicyView(Protocol):
    """What a decision reads of a store."""

    error: str | None
    authorization: list[AuthorizationPolicy]


def decide(store: PolicyView, conn: Connection, workload: Workload) -> Decision:
    """One inbound connection under the set in force; with no good set ever read, a deny."""
    if store.error is not None:
        return Decision(False, store.error)
    return authorize(conn, workload, store.authorization)
