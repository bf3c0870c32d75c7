"""How ztunnel matches a connection against the policy istiod sent it (ztunnel `src/rbac.rs`).

The shape is ztunnel's, not the AuthorizationPolicy API's: a policy is a list of groups
(one per surviving rule, ORed); a group is a list of clauses (`to`, `from`, one per
`when`; ANDed); a clause is a list of matches (ORed); a match ANDs its fields, ORing
values within a field, and a `not_*` field holds when none of its values match.
Two details decide real outcomes and are kept exactly:

* a policy with no groups matches nothing;
* a match with every field empty is *skipped*, so a clause made only of empty matches
  never holds, and its group can never match. This is why a DENY rule whose `to` was
  all HTTP attributes (say, only `hosts`) blocks nothing at ztunnel.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Literal, TypeVar

from trustusbank.manifests.istio.objects import Action, Connection, PeerIdentity

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SPIFFE_PREFIX = "spiffe://"


@dataclass(frozen=True)
class StringMatch:
    """istiod's reading of a pattern: `*` alone is presence, `*x` a suffix, `x*` a prefix, else exact."""

    kind: Literal["exact", "prefix", "suffix", "presence"]
    value: str = ""

    @classmethod
    def from_pattern(cls, pattern: str) -> StringMatch:
        if pattern == "*":
            return cls("presence")
        if pattern.startswith("*"):
            return cls("suffix", pattern[1:])
        if pattern.endswith("*"):
            return cls("prefix", pattern[:-1])
        return cls("exact", pattern)

    def matches(self, value: str) -> bool:
        if self.kind == "presence":
            return value != ""
        if self.kind == "prefix":
            return value.startswith(self.value)
        if self.kind == "suffix":
            return value.endswith(self.value)
        return value == self.value

    def matches_principal(self, principal: str | None) -> bool:
        # ztunnel strips `spiffe://` from the peer identity and fails without it, so a
        # policy that writes the prefix itself can never match.
        if principal is None or not principal.startswith(SPIFFE_PREFIX):
            return False
        return self.matches(principal[len(SPIFFE_PREFIX) :])


@dataclass(frozen=True)
class ServiceAccountMatch:
    """`serviceAccounts` entries: exact namespace and name, no wildcards; no identity never matches."""

    namespace: str
    service_account: str

    def matches(self, identity: PeerIdentity | None) -> bool:
        return (
            identity is not None
            and identity.namespace == self.namespace
            and identity.service_account == self.service_account
        )


@dataclass(frozen=True)
class L4Match:
    namespaces: tuple[StringMatch, ...] = ()
    not_namespaces: tuple[StringMatch, ...] = ()
    service_accounts: tuple[ServiceAccountMatch, ...] = ()
    not_service_accounts: tuple[ServiceAccountMatch, ...] = ()
    principals: tuple[StringMatch, ...] = ()
    not_principals: tuple[StringMatch, ...] = ()
    source_ips: tuple[Network, ...] = ()
    not_source_ips: tuple[Network, ...] = ()
    destination_ips: tuple[Network, ...] = ()
    not_destination_ips: tuple[Network, ...] = ()
    destination_ports: tuple[int, ...] = ()
    not_destination_ports: tuple[int, ...] = ()

    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def matches(self, conn: Connection) -> bool:
        identity = conn.source_identity
        principal = conn.source_principal
        namespace = identity.namespace if identity is not None else ""
        port = conn.destination_port
        return (
            _holds(self.destination_ips, self.not_destination_ips, lambda n: conn.destination_ip in n)
            and _holds(self.source_ips, self.not_source_ips, lambda n: conn.source_ip in n)
            and _holds(self.destination_ports, self.not_destination_ports, lambda p: p == port)
            and _holds(self.service_accounts, self.not_service_accounts, lambda s: s.matches(identity))
            and _holds(self.principals, self.not_principals, lambda s: s.matches_principal(principal))
            and _holds(self.namespaces, self.not_namespaces, lambda s: s.matches(namespace))
        )


T = TypeVar("T")


def _holds(positive: tuple[T, ...], negative: tuple[T, ...], predicate: Callable[[T], bool]) -> bool:
    if positive and not any(predicate(p) for p in positive):
        return False
    return not (negative and any(predicate(n) for n in negative))


Clause = tuple[L4Match, ...]
Group = tuple[Clause, ...]


class Scope(StrEnum):
    """How istiod tells ztunnel which workloads a policy is for."""

    GLOBAL = "GLOBAL"  # root namespace, no selector: every workload in the mesh
    NAMESPACE = "NAMESPACE"  # no selector: every workload in the policy's namespace
    WORKLOAD_SELECTOR = "WORKLOAD_SELECTOR"  # attached to the workloads its labels select


def clause_holds(clause: Clause, conn: Connection) -> bool:
    return any(not m.is_empty() and m.matches(conn) for m in clause)


def group_matches(group: Group, conn: Connection) -> bool:
    return all(clause_holds(clause, conn) for clause in group)


def group_can_match(group: Group) -> bool:
    """False when some clause is made only of empty matches: ztunnel skips those, so it never holds."""
    return all(any(not m.is_empty() for m in clause) for clause in group)


@dataclass(frozen=True)
class ZtunnelPolicy:
    """A policy as ztunnel holds it: only ALLOW or DENY, only L4 matches."""

    name: str
    namespace: str
    scope: Scope
    action: Literal[Action.ALLOW, Action.DENY]
    groups: tuple[Group, ...]
    dry_run: bool = False

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def has_effective_rules(self) -> bool:
        """Whether any group can ever match (istiod's `hasEffectiveRules`)."""
        return any(group_can_match(g) for g in self.groups)

    def matches(self, conn: Connection) -> bool:
        return any(group_matches(g, conn) for g in self.groups)
