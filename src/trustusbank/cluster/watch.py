"""What a running cluster's components read: deploy/ plus what has been applied, and when it changed.

One definition for the supervisor, every node proxy and every waypoint, so they
never disagree about which manifests are in force.
"""

from __future__ import annotations

from pathlib import Path

from trustusbank.cluster.layout import DEFENCE_DIR, ClusterFiles
from trustusbank.manifests.bundle import Bundle, load_bundle
from trustusbank.manifests.kagent.controller import expand

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(paths: list[Path]) -> Fingerprint:
    """Path, mtime and size of every file below `paths`: cheap, and enough to notice an edit."""
    files = sorted(
        f for p in paths if p.exists() for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()
    )
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


def load_in_force(deploy: Path, files: ClusterFiles) -> Bundle:
    """deploy/ without the separately applied defence set, plus whatever has been applied, plus what
    kagent's controller would create for each Agent (its Deployment, Service and ServiceAccount)."""
    return expand(load_bundle(deploy, include=[files.applied], exclude=[deploy / DEFENCE_DIR]))


class ManifestWatch:
    def __init__(self, deploy: Path, files: ClusterFiles) -> None:
        self.deploy = deploy
        self.files = files
        self._seen: Fingerprint | None = None

    def changed(self) -> bool:
        """True once per change (and on the first call)."""
        seen = fingerprint([self.deploy, self.files.applied])
        if seen == self._seen:
            return False
        self._seen = seen
        return True

    def load(self) -> Bundle:
        return load_in_force(self.deploy, self.files)
