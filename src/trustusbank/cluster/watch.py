"""What a running cluster's components read: deploy/ plus what has been applied, and when it changed.

One definition for the supervisor, every node proxy and every waypoint, so they
never disagree about which manifests are in force.
"""

from __future__ import annotations

from pathlib import Path

from trustusbank.cluster.layout import DEFENCE_DIR, ClusterFiles
from trustusbank.manifests.bundle import Bundle, load_bundle
from trustusbank.manifests.kagent.controller import expand
from trustusbank.manifests.manifest import ManifestError, Problem

Fingerprint = tuple[tuple[str, int, int], ...]
RACE_RETRIES = 5


def fingerprint(paths: list[Path]) -> Fingerprint:
    """Path, mtime and size of every file below `paths`: cheap, and enough to notice an edit.

    A file deleted between the listing and its stat is simply not there."""
    found = []
    for f in sorted(f for p in paths if p.exists() for f in ([p] if p.is_file() else p.rglob("*"))):
        try:
            stat = f.stat()
        except FileNotFoundError:
            continue
        if f.is_file():
            found.append((str(f), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def load_in_force(deploy: Path, files: ClusterFiles) -> Bundle:
    """deploy/ without the separately applied defence set, plus whatever has been applied, plus what
    kagent's controller would create for each Agent (its Deployment, Service and ServiceAccount)."""
    return expand(load_bundle(deploy, include=[files.applied], exclude=[deploy / DEFENCE_DIR]))


def _refuse_empty(seen: Fingerprint) -> None:
    empty = [Path(path) for path, _, size in seen if size == 0 and path.endswith((".yaml", ".yml"))]
    if empty:
        message = "empty: a write cut short or still under way (delete the file to remove its objects)"
        raise ManifestError([Problem(path, 0, message) for path in empty])


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
        """The manifests in force, read as one consistent set.

        `apply` and `delete` change files one at a time, so a read can race a writer: a file
        listed, then gone before it is read. Such a read is retried (the set in flux, not
        broken); a set that fails to load while nothing is changing is an error, which the
        readers refuse (keeping the set they had). So is an empty manifest file: what a write
        cut short or still under way leaves, never a way to say "no policy" (delete the file).
        """
        for _ in range(RACE_RETRIES):
            before = fingerprint([self.deploy, self.files.applied])
            try:
                _refuse_empty(before)
                bundle = load_in_force(self.deploy, self.files)
            except ManifestError:
                if fingerprint([self.deploy, self.files.applied]) != before:
                    continue
                raise
            if fingerprint([self.deploy, self.files.applied]) == before:
                self._seen = before  # what was loaded: a write that settled meanwhile is not a change
                return bundle
        return load_in_force(self.deploy, self.files)
