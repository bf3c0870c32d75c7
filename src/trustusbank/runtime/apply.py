"""`kubectl apply` for the embedded cluster: validated manifests placed next to deploy/, and recorded.

Validation happens before anything changes (as a cluster's admission would),
so a node proxy never sees a policy set it cannot read. The node proxies pick
up the change within a second, with no restart.

Every apply and delete is also an event in the cluster's runtime log (what a
cluster's audit log holds): who made the change, which file with which hash,
and the objects it carried with their labels (an incident id, say). An auditor
asks "who changed the policy, and when?" long after the file is gone.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import DEFENCE_DIR, ClusterFiles
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.manifest import Manifest, ManifestError, Problem
from trustusbank.manifests.yaml_source import read_documents, yaml_files

APPLIED_EVENT = "manifest-applied"
DELETED_EVENT = "manifest-deleted"
NO_OBJECTS = "holds no objects (cut short?): nothing to apply; `delete -f` removes a file's objects"


def _target(files: ClusterFiles, source: Path) -> Path:
    return files.applied / source.name


def apply(files: ClusterFiles, deploy: Path, sources: list[Path]) -> list[Path]:
    """Validate `sources` together with what runs, then install them; returns what was installed."""
    missing = [Problem(s, 0, "no such file or directory") for s in sources if not s.exists()]
    if missing:  # as kubectl does, refuse the whole apply before anything changes
        raise ManifestError(missing)
    manifests = [f for s in sources for f in (yaml_files(s) if s.is_dir() else [s])]
    files.make()
    replaced = {m.name for m in manifests}  # re-applying a file replaces it, as kubectl apply does
    kept = [f for f in applied(files) if f.name not in replaced]
    read = {m: m.read_bytes() for m in manifests}
    bundle = load_bundle(deploy, include=[*kept, *manifests], exclude=[deploy / DEFENCE_DIR])
    _unchanged_since_validated(read)
    carried = {
        m: [_object(o) for o in bundle.objects if o.source.file.resolve() == m.resolve()] for m in read
    }
    empty = [Problem(m, 0, NO_OBJECTS) for m, objects in carried.items() if not objects]
    if empty:  # as kubectl's "no objects passed to apply": never a quiet way to drop a policy
        raise ManifestError(empty)
    installed = []
    for manifest, data in read.items():
        target = _target(files, manifest)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        installed.append(target)
        record(files, APPLIED_EVENT, manifest, data, carried[manifest])
    return installed


def _unchanged_since_validated(read: dict[Path, bytes]) -> None:
    """Refuse the apply if a source changed while it was validated: what is installed is what passed.

    The bytes read before validation are the ones installed; the same bytes read after it
    mean validation saw them too (an editor saving mid-apply is caught, not half-installed).
    """
    changed = []
    for path, data in read.items():
        try:
            if path.read_bytes() != data:
                changed.append(Problem(path, 0, "changed while it was being applied: apply it again"))
        except OSError as exc:
            changed.append(Problem(path, 0, f"cannot be read again after validation: {exc.strerror or exc}"))
    if changed:
        raise ManifestError(changed)


def delete(files: ClusterFiles, sources: list[Path]) -> list[Path]:
    """Remove previously applied manifests (by file name); returns what was removed."""
    manifests = [f for s in sources for f in (yaml_files(s) if s.is_dir() else [s])]
    removed = []
    for manifest in manifests:
        target = _target(files, manifest)
        if not target.exists():
            continue
        data = target.read_bytes()  # what was in force, which may differ from the file named
        documents, _ = read_documents(target)
        target.unlink()
        removed.append(target)
        record(files, DELETED_EVENT, manifest, data, [_document_object(d.data) for d in documents])
    return removed


def applied(files: ClusterFiles) -> list[Path]:
    return yaml_files(files.applied) if files.applied.exists() else []


def actor() -> str:
    """Who is making the change: the OS user, as a kubeconfig user would be on a cluster."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def record(
    files: ClusterFiles, event: str, source: Path, data: bytes, objects: list[dict[str, Any]]
) -> dict[str, Any]:
    """Append one change event to the runtime log (one JSON line, like the supervisor's own)."""
    labels: dict[str, str] = {}
    for item in objects:
        labels.update(item["labels"])
    return files.record_event(
        event,
        {
            "actor": actor(),
            "file": source.name,
            "path": str(source.resolve()),
            "sha256": hashlib.sha256(data).hexdigest(),
            "objects": objects,
            "labels": labels,
        },
    )


def _object(manifest: Manifest) -> dict[str, Any]:
    return {
        "kind": manifest.kind,
        "name": manifest.name,
        "namespace": manifest.namespace,
        "labels": dict(manifest.labels),
    }


def _document_object(data: dict[str, Any]) -> dict[str, Any]:
    """The same summary from a document that is not validated again (it is on its way out)."""
    found = data.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    found = metadata.get("labels")
    labels: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "kind": str(data.get("kind")),
        "name": str(metadata.get("name")),
        "namespace": metadata.get("namespace"),
        "labels": {str(k): str(v) for k, v in labels.items()},
    }
