"""`kubectl apply` for the embedded cluster: validated manifests placed next to deploy/.

Validation happens before anything changes (as a cluster's admission would),
so a node proxy never sees a policy set it cannot read. The node proxies pick
up the change within a second, with no restart.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from trustusbank.manifests import load_bundle
from trustusbank.manifests.yaml_source import yaml_files
from trustusbank.runtime.layout import DEFENCE_DIR, ClusterFiles


def _target(files: ClusterFiles, source: Path) -> Path:
    return files.applied / source.name


def apply(files: ClusterFiles, deploy: Path, sources: list[Path]) -> list[Path]:
    """Validate `sources` together with what runs, then install them; returns what was installed."""
    manifests = [f for s in sources for f in (yaml_files(s) if s.is_dir() else [s])]
    files.make()
    replaced = {m.name for m in manifests}  # re-applying a file replaces it, as kubectl apply does
    kept = [f for f in applied(files) if f.name not in replaced]
    load_bundle(deploy, include=[*kept, *manifests], exclude=[deploy / DEFENCE_DIR])
    installed = []
    for manifest in manifests:
        target = _target(files, manifest)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(manifest, tmp)
        tmp.replace(target)
        installed.append(target)
    return installed


def delete(files: ClusterFiles, sources: list[Path]) -> list[Path]:
    """Remove previously applied manifests (by file name); returns what was removed."""
    manifests = [f for s in sources for f in (yaml_files(s) if s.is_dir() else [s])]
    removed = []
    for manifest in manifests:
        target = _target(files, manifest)
        if target.exists():
            target.unlink()
            removed.append(target)
    return removed


def applied(files: ClusterFiles) -> list[Path]:
    return yaml_files(files.applied) if files.applied.exists() else []
