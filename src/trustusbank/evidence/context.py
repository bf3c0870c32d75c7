"""Who is who, at ingest: pods, identities and images from topology.json.

Log lines name pods by name or address and agents by name; the evidence store
keys them by SPIFFE identity and image, which only the cluster's topology knows.
A missing or unreadable topology leaves those fields empty: the record is still
kept, verbatim, and says less. The file is read as plain JSON (the fields the
supervisor writes), so reading evidence does not load the manifest machinery.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TRUST_DOMAIN = "cluster.local"


def spiffe(trust_domain: str, namespace: str, service_account: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def normalize_identity(value: object) -> str | None:
    """A SPIFFE ID as `spiffe://…`: kagent and Istio principals drop the scheme (`td/ns/x/sa/y`)."""
    if not isinstance(value, str) or not value or value == "unknown":
        return None
    if value.startswith("spiffe://"):
        return value
    return f"spiffe://{value}" if "/ns/" in value and "/sa/" in value else value


def identity_parts(identity: str | None) -> tuple[str, str] | None:
    """(namespace, service account) of a SPIFFE ID."""
    if not identity or "/ns/" not in identity or "/sa/" not in identity:
        return None
    tail = identity.split("/ns/", 1)[1]
    namespace, _, rest = tail.partition("/sa/")
    return namespace, rest.split("/", 1)[0]


@dataclass(frozen=True)
class Pod:
    """A pod as topology.json records it (the fields the evidence needs)."""

    name: str
    namespace: str
    deployment: str
    service_account: str
    ip: str
    app_ip: str
    image: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Pod:
        return cls(
            name=str(raw["name"]),
            namespace=str(raw["namespace"]),
            deployment=str(raw["deployment"]),
            service_account=str(raw["service_account"]),
            ip=str(raw["ip"]),
            app_ip=str(raw["app_ip"]),
            image=str(raw.get("image") or ""),
        )


@dataclass
class Cluster:
    """The topology, with the lookups ingestion needs."""

    trust_domain: str = DEFAULT_TRUST_DOMAIN
    pods: list[Pod] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Cluster:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(str(raw.get("trust_domain") or DEFAULT_TRUST_DOMAIN), [Pod.of(p) for p in raw["pods"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("topology %s unreadable; records will lack identities and images: %s", path, exc)
            return cls()

    def pod(self, namespace: str | None, name: str | None) -> Pod | None:
        """A pod by name (`x-0`), or by Deployment name, optionally within a namespace."""
        if not name:
            return None
        candidates = [p for p in self.pods if namespace is None or p.namespace == namespace]
        return next((p for p in candidates if p.name == name), None) or next(
            (p for p in candidates if p.deployment == name), None
        )

    def pod_at(self, address: object) -> Pod | None:
        """The pod owning an `ip` or `ip:port` (its pod IP or its private app address)."""
        if not isinstance(address, str) or not address:
            return None
        ip = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
        return next((p for p in self.pods if ip in (p.ip, p.app_ip)), None)

    def pod_of_identity(self, identity: str | None) -> Pod | None:
        parts = identity_parts(identity)
        if parts is None:
            return None
        namespace, account = parts
        return next((p for p in self.pods if p.namespace == namespace and p.service_account == account), None)

    def identity(self, pod: Pod | None) -> str | None:
        return spiffe(self.trust_domain, pod.namespace, pod.service_account) if pod else None
