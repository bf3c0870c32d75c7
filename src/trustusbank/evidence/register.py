"""The DORA Art. 28 register of third-party ICT providers, as the agent registry keeps it.

By default it is computed from the registry's own data (the catalogue in the
manifests, each build's digest and tool list, and the pins the running registry
recorded, read from a copy of its database so the report never writes to it).
Given a registry URL, its `/api/servers` answer is used instead.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.errors import UnavailableError
from trustusbank.paths import deploy_dir

REGISTRY_NAMESPACE = "trustusbank-platform"
REGISTRY_POD = "agentregistry-0"
PINS_FILE = "agentregistry.sqlite3"


class RegisterError(UnavailableError, RuntimeError):
    """The register could not be read; the report says so instead of listing nothing."""


def _deploy(files: ClusterFiles) -> Path:
    """The manifests the cluster runs (status.json names them), else the default bundle."""
    try:
        status = json.loads(files.status.read_text(encoding="utf-8"))
        path = Path(status["deploy"])
        if path.is_dir():
            return path
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return deploy_dir()


def _copy_pins(files: ClusterFiles, target: Path) -> None:
    """The running registry's pins, copied read-only (SQLite backup) so its database is never touched."""
    source = files.root / "pods" / REGISTRY_NAMESPACE / REGISTRY_POD / "state" / "data" / PINS_FILE
    if not source.exists():
        return
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


async def register_entries(files: ClusterFiles, registry_url: str | None = None) -> list[dict[str, Any]]:
    # Loaded here: the catalogue brings the workloads and the MCP SDK, which evidence queries never need.
    import httpx

    from trustusbank.manifests.bundle import load_bundle
    from trustusbank.manifests.manifest import ManifestError
    from trustusbank.workloads.agentregistry.catalogue import (
        CatalogueError,
        PinStore,
        build_entries,
        catalogue_from_bundle,
    )
    from trustusbank.workloads.entrypoints import WORKLOADS

    if registry_url:
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                response = await client.get(f"{registry_url.rstrip('/')}/api/servers")
                response.raise_for_status()
                return list(response.json()["servers"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise RegisterError(f"the registry at {registry_url} did not answer: {exc}") from exc
    try:
        bundle = load_bundle(_deploy(files))
        catalogue = catalogue_from_bundle(bundle)
        with tempfile.TemporaryDirectory(prefix="trustusbank-register-") as scratch:
            pins_path = Path(scratch) / PINS_FILE
            _copy_pins(files, pins_path)
            entries = await build_entries(bundle, catalogue, PinStore(pins_path), WORKLOADS)
    except (ManifestError, CatalogueError, sqlite3.Error, OSError) as exc:
        raise RegisterError(f"the registry's catalogue cannot be read: {exc}") from exc
    return [{**entry, **_running_image(files, entry)} for entry in entries]


def _running_image(files: ClusterFiles, entry: dict[str, Any]) -> dict[str, Any]:
    """What the registry adds from the image store (the tag's digest now, pin match, signature)."""
    from trustusbank.workloads.agentregistry import catalogue

    merge = getattr(catalogue, "running_image", None)
    if not callable(merge):
        return {}
    try:
        found = merge(files.images if files.images.is_dir() else None, entry)
    except Exception as exc:  # the register is still worth having without it; say why
        return {"signature": {"status": "error", "detail": f"cannot check the image store: {exc}"}}
    return dict(found) if isinstance(found, dict) else {}
