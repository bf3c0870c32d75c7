"""Typed, read-only views of the core Kubernetes kinds in the bundle.

Later code (the runtime, the mesh model) reads these instead of raw dicts, so that
a field's name and default are decided once, here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from trustusbank.manifests.manifest import Manifest, field_at, namespace_of

AMBIENT_LABEL = "istio.io/dataplane-mode"
WAYPOINT_LABEL = "istio.io/use-waypoint"


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: dict[str, str]
    manifest: Manifest = field(repr=False, compare=False)

    @property
    def ambient(self) -> bool:
        return self.labels.get(AMBIENT_LABEL) == "ambient"

    @property
    def use_waypoint(self) -> str | None:
        return self.labels.get(WAYPOINT_LABEL)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Namespace:
        return cls(manifest.name, manifest.labels, manifest)


@dataclass(frozen=True)
class ServiceAccount:
    name: str
    namespace: str
    manifest: Manifest = field(repr=False, compare=False)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ServiceAccount:
        return cls(manifest.name, namespace_of(manifest), manifest)


class ContainerPort(NamedTuple):
    name: str | None
    container_port: int
    protocol: str


@dataclass(frozen=True)
class Container:
    """A container as the embedded runtime needs it: what to run, with which environment."""

    name: str
    image: str | None
    command: list[str]
    args: list[str]
    env: dict[str, str]
    env_value_from: dict[str, dict[str, Any]]
    ports: list[ContainerPort]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Container:
        env_entries = body.get("env") or []
        return cls(
            name=body["name"],
            image=body.get("image"),
            command=list(body.get("command") or []),
            args=list(body.get("args") or []),
            env={e["name"]: e.get("value") or "" for e in env_entries if not e.get("valueFrom")},
            env_value_from={e["name"]: e["valueFrom"] for e in env_entries if e.get("valueFrom")},
            ports=[
                ContainerPort(p.get("name"), p["containerPort"], p.get("protocol") or "TCP")
                for p in body.get("ports") or []
            ],
        )


@dataclass(frozen=True)
class LabelSelector:
    match_labels: dict[str, str]
    match_expressions: list[dict[str, Any]]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics; an empty selector matches nothing here, as a Deployment needs one."""
        if not self.match_labels and not self.match_expressions:
            return False
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        return all(_expression_matches(e, labels) for e in self.match_expressions)

    @classmethod
    def from_body(cls, body: Mapping[str, Any] | None) -> LabelSelector:
        body = body or {}
        return cls(dict(body.get("matchLabels") or {}), list(body.get("matchExpressions") or []))


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    return key not in labels  # DoesNotExist


@dataclass(frozen=True)
class Deployment:
    name: str
    namespace: str
    labels: dict[str, str]
    selector: LabelSelector
    pod_labels: dict[str, str]
    service_account: str
    containers: list[Container]
    replicas: int
    manifest: Manifest = field(repr=False, compare=False)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Deployment:
        spec = manifest.body.get("spec") or {}
        pod_spec = field_at(spec, "template", "spec") or {}
        replicas = spec.get("replicas")
        return cls(
            name=manifest.name,
            namespace=namespace_of(manifest),
            labels=manifest.labels,
            selector=LabelSelector.from_body(spec.get("selector")),
            pod_labels=dict(field_at(spec, "template", "metadata", "labels") or {}),
            service_account=pod_spec.get("serviceAccountName") or "default",
            containers=[Container.from_body(c) for c in pod_spec.get("containers") or []],
            replicas=1 if replicas is None else replicas,
            manifest=manifest,
        )


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    target_port: int | str
    protocol: str


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    selector: dict[str, str]
    ports: list[ServicePort]
    manifest: Manifest = field(repr=False, compare=False)

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    def selects(self, deployment: Deployment) -> bool:
        """A Service without a selector has hand-managed endpoints, so it selects no Deployment."""
        return (
            bool(self.selector)
            and deployment.namespace == self.namespace
            and all(deployment.pod_labels.get(k) == v for k, v in self.selector.items())
        )

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Service:
        spec = manifest.body.get("spec") or {}
        ports = [
            ServicePort(
                name=p.get("name"),
                port=p["port"],
                target_port=p.get("targetPort") or p["port"],  # Kubernetes defaults it to `port`.
                protocol=p.get("protocol") or "TCP",
            )
            for p in spec.get("ports") or []
        ]
        return cls(manifest.name, namespace_of(manifest), dict(spec.get("selector") or {}), ports, manifest)


@dataclass(frozen=True)
class ConfigMap:
    name: str
    namespace: str
    data: dict[str, str]
    manifest: Manifest = field(repr=False, compare=False)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ConfigMap:
        return cls(manifest.name, namespace_of(manifest), dict(manifest.body.get("data") or {}), manifest)


@dataclass(frozen=True)
class Secret:
    """A Secret's values, decoded; `stringData` wins over `data` for a key in both (the API server
    merges them so)."""

    name: str
    namespace: str
    type: str
    data: dict[str, bytes]
    manifest: Manifest = field(repr=False, compare=False)

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        return None if value is None else value.decode("utf-8", errors="replace")

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Secret:
        data = {k: base64.b64decode(v or "") for k, v in (manifest.body.get("data") or {}).items()}
        data |= {k: (v or "").encode() for k, v in (manifest.body.get("stringData") or {}).items()}
        kind = manifest.body.get("type") or "Opaque"
        return cls(manifest.name, namespace_of(manifest), kind, data, manifest)
