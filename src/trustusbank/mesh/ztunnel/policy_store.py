"""The policies a node proxy enforces, reloaded when deploy/ or the applied set changes.

Reloading is how `policies on|off` reach a running node without a restart.
If the policy set cannot be read, the node denies everything until it can:
a broken policy file must never mean "no policy".
"""

from __future__ import annotations

import logging
from pathlib import Path

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.watch import ManifestWatch
from trustusbank.manifests.istio.objects import AuthorizationPolicy, PeerAuthentication
from trustusbank.manifests.manifest import ManifestError

log = logging.getLogger(__name__)
# What this store logs on each reload, read by `runtime/defence.py` to know a change is in force.
LOADED = "policies loaded:"
UNREADABLE = "policy set unreadable, denying all:"


class PolicyStore:
    def __init__(self, deploy: Path, files: ClusterFiles) -> None:
        self.watch = ManifestWatch(deploy, files)
        self.authorization: list[AuthorizationPolicy] = []
        self.peer_authentication: list[PeerAuthentication] = []
        self.error: str | None = None

    def reload_if_changed(self) -> bool:
        if not self.watch.changed():
            return False
        try:
            bundle = self.watch.load()
            self.authorization = AuthorizationPolicy.all_in(bundle.objects)
            self.peer_authentication = [
                PeerAuthentication.from_manifest(m) for m in bundle.objects if m.kind == "PeerAuthentication"
            ]
            self.error = None
            log.info(
                f"{LOADED} %s",
                ", ".join(p.ref for p in self.authorization) or "no AuthorizationPolicy",
            )
        except (ManifestError, ValueError, KeyError) as exc:
            self.error = f"{UNREADABLE} {exc}"
            log.error(self.error)
        return True
