"""The waypoint's configuration and L7 policies in force, reloaded when the manifests change.

A change that does not load (a file garbled, emptied or invalid, a CEL expression that
does not compile) is refused and the last good configuration stays, loudly, as
agentgateway keeps serving its last accepted config: never "no policy". A waypoint that
has never loaded one does not start.
"""

from __future__ import annotations

import logging
from pathlib import Path

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.watch import ManifestWatch
from trustusbank.manifests.istio.objects import AuthorizationPolicy
from trustusbank.manifests.manifest import ManifestError
from trustusbank.mesh.authz.scope import policies_for_gateway
from trustusbank.mesh.waypoint.ratelimit import RateLimitBuckets
from trustusbank.mesh.waypoint.routes import WaypointConfig

log = logging.getLogger(__name__)
REFUSED = "configuration change refused, keeping the last good one:"


class ConfigStore:
    def __init__(self, deploy: Path, files: ClusterFiles, gateway: str) -> None:
        self.gateway = gateway
        self.watch = ManifestWatch(deploy, files)
        self.refused: str | None = None  # the last change refused, while the one before it serves
        self._config: WaypointConfig | None = None
        self._authz: list[AuthorizationPolicy] = []
        self._buckets = RateLimitBuckets()  # kept across reloads: a reload is no way around a limit

    def config(self) -> WaypointConfig:
        assert self._config is not None, "read before the first load"
        return self._config

    def authz(self) -> list[AuthorizationPolicy]:
        return self._authz

    def reload_if_changed(self) -> None:
        """Load a changed configuration; refuse one that does not load (raise if there is none yet)."""
        if not self.watch.changed():
            return
        namespace, _, name = self.gateway.partition("/")
        try:
            bundle = self.watch.load()
            config = WaypointConfig.from_manifests(bundle.objects, namespace, name, buckets=self._buckets)
            policies = policies_for_gateway(AuthorizationPolicy.all_in(bundle.objects), name, namespace)
        except (ManifestError, ValueError, KeyError) as exc:
            if self._config is None:
                raise
            self.refused = f"{REFUSED} {exc}"
            log.error(self.refused)
            return
        self._config, self._authz, self.refused = config, policies, None
        names = sorted(m.name for m in bundle.objects if m.kind == "AgentgatewayPolicy")
        log.info(
            "waypoint configuration loaded for %s: policies %s", self.gateway, ", ".join(names) or "none"
        )
