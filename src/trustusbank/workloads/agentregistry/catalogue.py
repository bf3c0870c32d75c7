"""The registry's entries: the registered catalogue joined with the manifests and the builds.

The registered record (publisher, version, image) is what a bank files in its
Art. 28 register, and it does not change when a vendor's tag is rewritten.
What does change is the digest behind the tag; the registry pins it when an
entry is first registered and reports every build against that pin. Which
digest the tag resolves to *now*, and whether the org's key signed it, it asks
the image store at each request (read-only): a rug pull shows up there first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from trustusbank.images.digest import build_digest
from trustusbank.images.store import ImageStore, ImageStoreError
from trustusbank.images.tool_list import tool_list_hash
from trustusbank.manifests.bundle import Bundle
from trustusbank.manifests.core import ConfigMap, Deployment, Service
from trustusbank.sqlite_file import SqliteFile
from trustusbank.workloads.agentregistry.inspect import build_tools
from trustusbank.workloads.errors import WorkloadConfigError

if TYPE_CHECKING:
    from trustusbank.workloads.entrypoints import Workload

CATALOGUE_CONFIGMAP = ("trustusbank-platform", "agentregistry-catalogue", "catalogue.yaml")
TRUST_DOMAIN = "cluster.local"


class CatalogueError(WorkloadConfigError):
    """The catalogue or the manifests it refers to are not usable."""


@dataclass(frozen=True)
class Registered:
    name: str
    title: str
    publisher: str
    version: str
    classification: str
    deployment: str  # "<namespace>/<name>"
    description: str


def parse_catalogue(text: str, origin: str) -> list[Registered]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{origin}: not valid YAML: {exc}") from exc
    servers = doc.get("servers") if isinstance(doc, dict) else None
    if not isinstance(servers, list):
        raise CatalogueError(f"{origin}: expected a top-level 'servers' list")
    fields = Registered.__dataclass_fields__
    entries = []
    for i, raw in enumerate(servers):
        if not isinstance(raw, dict):
            raise CatalogueError(f"{origin}: servers[{i}] is not a mapping")
        missing = sorted(set(fields) - set(raw))
        unknown = sorted(set(raw) - set(fields))
        if missing or unknown:
            raise CatalogueError(
                f"{origin}: servers[{i}]: missing {missing or '-'}, unknown {unknown or '-'}"
            )
        entries.append(Registered(**{k: str(raw[k]) for k in fields}))
    return entries


def catalogue_from_bundle(bundle: Bundle) -> list[Registered]:
    namespace, name, key = CATALOGUE_CONFIGMAP
    cm = bundle.view("ConfigMap", namespace, name)
    if not isinstance(cm, ConfigMap) or key not in cm.data:
        raise CatalogueError(f"the manifests have no ConfigMap {namespace}/{name} with key {key}")
    return parse_catalogue(cm.data[key], f"ConfigMap {namespace}/{name}")


PINS_SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (
    name TEXT PRIMARY KEY, digest TEXT NOT NULL, tool_list_hash TEXT NOT NULL, registered_at REAL NOT NULL
);
"""


class PinStore:
    """Pins recorded at registration; SQLite so that they survive restarts."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteFile(path, PINS_SCHEMA)

    def pin(self, name: str, digest: str, tool_hash: str) -> dict[str, Any]:
        """The entry's pin, recorded now if it has none yet."""
        with self._db.connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO pins VALUES (?, ?, ?, ?)", (name, digest, tool_hash, time.time())
            )
            row = conn.execute("SELECT * FROM pins WHERE name = ?", (name,)).fetchone()
        return {
            "digest": row["digest"],
            "tool_list_hash": row["tool_list_hash"],
            "registered_at": row["registered_at"],
        }


def _workload_of(
    bundle: Bundle, entry: Registered, workloads: Mapping[str, Workload]
) -> tuple[Deployment, Service | None, Workload]:
    namespace, _, name = entry.deployment.partition("/")
    deployment = bundle.view("Deployment", namespace, name)
    if not isinstance(deployment, Deployment):
        raise CatalogueError(f"{entry.name}: no Deployment {entry.deployment} in the manifests")
    command = deployment.containers[0].command
    if len(command) < 3 or command[:2] != ["trustusbank", "serve"] or command[2] not in workloads:
        raise CatalogueError(f"{entry.name}: Deployment {entry.deployment} does not run a known workload")
    services = bundle.service_for(deployment)
    return deployment, services[0] if services else None, workloads[command[2]]


@dataclass
class BuildInfo:
    """One build behind an image tag, as the registry sees it."""

    variant: str
    digest: str
    tool_list_hash: str
    tools: list[str]
    digest_matches_pin: bool = False
    tool_list_matches_pin: bool = False


async def _builds(workload: Workload) -> list[BuildInfo]:
    builds = []
    for variant in workload.variants:
        tools = await build_tools(workload, variant)
        digest = build_digest(workload.image, variant)
        builds.append(BuildInfo(variant, digest, tool_list_hash(tools), [t.name for t in tools]))
    return builds


async def build_entries(
    bundle: Bundle, catalogue: list[Registered], pins: PinStore, workloads: Mapping[str, Workload]
) -> list[dict[str, Any]]:
    """Every registered server with its pin and how each known build compares to it.

    `workloads` are the programs the registry can build to list their tools (every `serve`
    target); they are passed in because the registry is one of them.

    The first build of a workload is the one its publisher shipped, so that is
    what gets pinned when the entry has no pin yet.
    """
    entries = []
    for reg in catalogue:
        deployment, service, workload = _workload_of(bundle, reg, workloads)
        builds = await _builds(workload)
        pin = pins.pin(reg.name, builds[0].digest, builds[0].tool_list_hash)
        for build in builds:
            build.digest_matches_pin = build.digest == pin["digest"]
            build.tool_list_matches_pin = build.tool_list_hash == pin["tool_list_hash"]
        port = service.ports[0].port if service else workload.port
        entries.append(
            {
                **reg.__dict__,
                "namespace": deployment.namespace,
                "service_account": deployment.service_account,
                "spiffe_id": f"spiffe://{TRUST_DOMAIN}/ns/{deployment.namespace}/sa/{deployment.service_account}",
                "image": deployment.containers[0].image,
                "transport": {
                    "type": "streamable-http",
                    "url": f"http://{service.fqdn if service else reg.name}:{port}/mcp",
                },
                "tools": builds[0].tools,
                "pinned": pin,
                "builds": [asdict(build) for build in builds],
                "running": None,
                "matches_pin": None,
                "tool_list_matches_pin": None,
                "signature": NOT_CHECKED,
            }
        )
    return entries


NOT_CHECKED = {"status": "not-checked", "detail": "no image store is configured (TRUSTUSBANK_IMAGE_STORE)"}


def running_image(store: Path | None, entry: dict[str, Any]) -> dict[str, Any]:
    """The entry's `running`, `matches_pin`, `tool_list_matches_pin` and `signature`, from the image
    store as it is now.

    `signature.status` is `org` only when a stored signature verifies with the org
    public key published next to the store; a store that cannot be read says so.
    The running tool list is the one the registry listed from the build with the
    running digest; a digest it never scanned has no known tool list, so it does
    not match the pin either."""
    if store is None:
        return {"running": None, "matches_pin": None, "tool_list_matches_pin": None, "signature": NOT_CHECKED}
    from trustusbank.images.signing import org_public_key

    try:
        images = ImageStore(store, readonly=True)
        found = images.lookup(entry["image"])
        if found is None:
            missing = {"status": "not-found", "detail": f"{entry['image']} is not in the image store"}
            return {
                "running": None,
                "matches_pin": False,
                "tool_list_matches_pin": False,
                "signature": missing,
            }
        verdict = images.signature_status(found.tag, found.digest, org_public_key(store)).to_dict()
    except (ImageStoreError, OSError, ValueError) as exc:
        failed = {"status": "error", "detail": f"cannot check the image store: {exc}"}
        return {"running": None, "matches_pin": False, "tool_list_matches_pin": False, "signature": failed}
    scanned = {build["digest"]: build["tool_list_hash"] for build in entry.get("builds", [])}
    tool_hash = scanned.get(found.digest)
    running = {
        "tag": found.tag,
        "digest": found.digest,
        "updated_at": found.updated_at,
        "tool_list_hash": tool_hash,
    }
    return {
        "running": running,
        "matches_pin": found.digest == entry["pinned"]["digest"],
        "tool_list_matches_pin": tool_hash is not None and tool_hash == entry["pinned"].get("tool_list_hash"),
        "signature": verdict,
    }
