"""AuthorizationPolicy and PeerAuthentication as their author wrote them, in Istio's API shape.

This is deliberately not what ztunnel enforces (see `ztunnel.py`): a policy linter has
to be able to show both what was written and what the data plane will actually do, so
the written form is kept whole here, L7 fields included, for the waypoint to use too.
The inputs of a decision (the connection and the destination workload) live here as
well, so that every other module depends on this one and on nothing else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from trustusbank.manifests.manifest import Manifest, namespace_of

ROOT_NAMESPACE = "istio-system"
"""istiod's default `meshConfig.rootNamespace`: policies here apply mesh-wide."""

DRY_RUN_ANNOTATION = "istio.io/dry-run"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Action(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    AUDIT = "AUDIT"
    CUSTOM = "CUSTOM"


class MtlsMode(StrEnum):
    UNSET = "UNSET"
    DISABLE = "DISABLE"
    PERMISSIVE = "PERMISSIVE"
    STRICT = "STRICT"


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


SOURCE_FIELDS = (
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
    "trustDomains",
    "notTrustDomains",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
)
OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")


def _strings(body: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {_snake(name): tuple(str(v) for v in body.get(name) or ()) for name in fields}


@dataclass(frozen=True)
class Source:
    """One `from[].source`: its fields are ANDed, the values within a field ORed."""

    principals: tuple[str, ...] = ()
    not_principals: tuple[str, ...] = ()
    request_principals: tuple[str, ...] = ()
    not_request_principals: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    not_namespaces: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()
    not_service_accounts: tuple[str, ...] = ()
    trust_domains: tuple[str, ...] = ()
    not_trust_domains: tuple[str, ...] = ()
    ip_blocks: tuple[str, ...] = ()
    not_ip_blocks: tuple[str, ...] = ()
    remote_ip_blocks: tuple[str, ...] = ()
    not_remote_ip_blocks: tuple[str, ...] = ()

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Source:
        return cls(**_strings(body, SOURCE_FIELDS))


@dataclass(frozen=True)
class Operation:
    """One `to[].operation`; ports stay strings, as in the API, because that is what istiod parses."""

    hosts: tuple[str, ...] = ()
    not_hosts: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    not_ports: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Operation:
        return cls(**_strings(body, OPERATION_FIELDS))


@dataclass(frozen=True)
class Condition:
    """One `when[]` entry."""

    key: str
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Condition:
        values = tuple(str(v) for v in body.get("values") or ())
        not_values = tuple(str(v) for v in body.get("notValues") or ())
        return cls(str(body.get("key") or ""), values, not_values)


@dataclass(frozen=True)
class Rule:
    """`from`, `to` and `when` are ANDed; entries within `from` (or `to`) are ORed."""

    sources: tuple[Source, ...] = ()
    operations: tuple[Operation, ...] = ()
    conditions: tuple[Condition, ...] = ()

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Rule:
        return cls(
            sources=tuple(Source.from_body(f.get("source") or {}) for f in body.get("from") or ()),
            operations=tuple(Operation.from_body(t.get("operation") or {}) for t in body.get("to") or ()),
            conditions=tuple(Condition.from_body(w) for w in body.get("when") or ()),
        )


@dataclass(frozen=True)
class Selector:
    """A workload selector (`matchLabels` only, as Istio's WorkloadSelector)."""

    match_labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, labels: Mapping[str, str]) -> Selector:
        return cls(tuple(sorted(labels.items())))

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.match_labels)

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Subset match; a selector without labels selects nothing (see `scope.py` for why)."""
        return bool(self.match_labels) and all(labels.get(k) == v for k, v in self.match_labels)


def _selector(spec: Mapping[str, Any]) -> Selector | None:
    if "selector" not in spec or spec["selector"] is None:
        return None
    return Selector.of(dict((spec["selector"] or {}).get("matchLabels") or {}))


@dataclass(frozen=True)
class TargetRef:
    kind: str
    name: str
    group: str = ""
    namespace: str = ""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> TargetRef:
        return cls(
            kind=str(body.get("kind") or ""),
            name=str(body.get("name") or ""),
            group=str(body.get("group") or ""),
            namespace=str(body.get("namespace") or ""),
        )


@dataclass(frozen=True)
class AuthorizationPolicy:
    """`security.istio.io/v1` AuthorizationPolicy; `manifest` keeps file and line for messages."""

    name: str
    namespace: str
    action: Action = Action.ALLOW
    selector: Selector | None = None
    target_refs: tuple[TargetRef, ...] = ()
    rules: tuple[Rule, ...] = ()
    provider: str | None = None
    dry_run: bool = False
    manifest: Manifest | None = field(default=None, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """`<namespace>/<name>`, the form ztunnel's logs use."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_spec(
        cls,
        name: str,
        namespace: str,
        spec: Mapping[str, Any] | None,
        annotations: Mapping[str, str] | None = None,
        manifest: Manifest | None = None,
    ) -> AuthorizationPolicy:
        """Build from a spec that has passed validation (see `validation.py`)."""
        spec = spec or {}
        refs = tuple(TargetRef.from_body(r) for r in spec.get("targetRefs") or ())
        if not refs and spec.get("targetRef"):
            refs = (TargetRef.from_body(spec["targetRef"]),)  # the legacy single form, as istiod reads it
        dry_run = str((annotations or {}).get(DRY_RUN_ANNOTATION, "")).strip().lower() in {"true", "1", "t"}
        return cls(
            name=name,
            namespace=namespace,
            action=Action(spec.get("action") or "ALLOW"),
            selector=_selector(spec),
            target_refs=refs,
            rules=tuple(Rule.from_body(r or {}) for r in spec.get("rules") or ()),
            provider=(spec.get("provider") or {}).get("name") or None,
            dry_run=dry_run,
            manifest=manifest,
        )

    @classmethod
    def all_in(cls, objects: Iterable[Manifest]) -> list[AuthorizationPolicy]:
        """Every AuthorizationPolicy among loaded manifests."""
        return [cls.from_manifest(m) for m in objects if m.kind == "AuthorizationPolicy"]

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> AuthorizationPolicy:
        namespace = namespace_of(manifest)
        spec = manifest.body.get("spec")
        return cls.from_spec(manifest.name, namespace, spec, manifest.annotations, manifest)


@dataclass(frozen=True)
class PeerAuthentication:
    """`security.istio.io/v1` PeerAuthentication; ports in `port_level` are workload (target) ports."""

    name: str
    namespace: str
    mode: MtlsMode = MtlsMode.UNSET
    selector: Selector | None = None
    port_level: tuple[tuple[int, MtlsMode], ...] = ()
    manifest: Manifest | None = field(default=None, compare=False, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_spec(
        cls, name: str, namespace: str, spec: Mapping[str, Any] | None, manifest: Manifest | None = None
    ) -> PeerAuthentication:
        spec = spec or {}
        ports = spec.get("portLevelMtls") or {}
        return cls(
            name=name,
            namespace=namespace,
            mode=MtlsMode((spec.get("mtls") or {}).get("mode") or "UNSET"),
            selector=_selector(spec),
            port_level=tuple(
                sorted((int(port), MtlsMode((m or {}).get("mode") or "UNSET")) for port, m in ports.items())
            ),
            manifest=manifest,
        )

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> PeerAuthentication:
        return cls.from_spec(manifest.name, namespace_of(manifest), manifest.body.get("spec"), manifest)


class PeerIdentity(Protocol):
    """What a decision needs of the peer's verified SPIFFE ID (`mesh.identity.spiffe.SpiffeId` fits)."""

    @property
    def trust_domain(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def service_account(self) -> str: ...


@dataclass(frozen=True)
class Workload:
    """The destination, as ztunnel knows it: policies select it by namespace and pod labels."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


def _ip(value: str | IpAddress) -> IpAddress:
    return value if not isinstance(value, str) else ipaddress.ip_address(value)


@dataclass(frozen=True, init=False)
class Connection:
    """One inbound connection at the destination's ztunnel; `source_identity` is None for plaintext.

    `destination_port` is the workload's own (target) port, not the Service port: ztunnel sees
    the connection after the Service has been resolved to a pod.
    """

    source_identity: PeerIdentity | None
    source_ip: IpAddress
    destination_ip: IpAddress
    destination_port: int

    def __init__(
        self,
        source_identity: PeerIdentity | None,
        source_ip: str | IpAddress,
        destination_ip: str | IpAddress,
        destination_port: int,
    ) -> None:
        object.__setattr__(self, "source_identity", source_identity)
        object.__setattr__(self, "source_ip", _ip(source_ip))
        object.__setattr__(self, "destination_ip", _ip(destination_ip))
        object.__setattr__(self, "destination_port", int(destination_port))

    @property
    def source_principal(self) -> str | None:
        """The identity as ztunnel renders it for principal matching: `spiffe://td/ns/x/sa/y`."""
        i = self.source_identity
        return None if i is None else f"spiffe://{i.trust_domain}/ns/{i.namespace}/sa/{i.service_account}"

    def __str__(self) -> str:
        return f"{self.source_ip}({self.source_principal})->{self.destination_ip}:{self.destination_port}"
