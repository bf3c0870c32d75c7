"""What istiod hands ztunnel for an AuthorizationPolicy, and what is lost on the way.

ztunnel cannot see HTTP, so istiod rewrites each policy before sending it
(istio `pilot/pkg/serviceregistry/ambient/authorization.go`). The rewrite is where a
policy that "looks right" silently stops doing what its author meant, so besides
the ztunnel form this module returns `Finding`s that say, per rule and field, what
happened, plus istiod's own status message, word for word.

The rules of the rewrite, as istiod applies them:

* `targetRef(s)` policies are for waypoints and gateways; ztunnel never gets them.
* Only ALLOW and DENY are sent; AUDIT and CUSTOM get the status "ztunnel does not
  support the <ACTION> action" and are not sent at all; our ztunnel ignores them
  just the same (see `evaluate.py`).
* L4 fields are kept: `principals`, `namespaces`, `serviceAccounts`, `ipBlocks`, their
  `not*` forms, `ports`/`notPorts`, and `when` on `source.ip`, `source.namespace`,
  `source.principal`, `destination.ip`, `destination.port`.
* Anything else is an HTTP attribute: `hosts`, `methods`, `paths`, `requestPrincipals`,
  `remoteIpBlocks` (and `not*` forms), and every other `when` key, including
  `source.serviceAccount`, `source.trustDomain`, `connection.sni` and `remote.ip`.
  In an ALLOW rule the whole rule is dropped. In a DENY rule the HTTP fields are
  removed and the rest is kept; if that leaves a `to`, `from` or `when` clause with
  nothing in it, ztunnel skips the clause's empty match, so the rule never matches.
* `trustDomains`/`notTrustDomains` are neither converted nor reported by istiod: they
  vanish without a status, which can empty a clause just the same.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from trustusbank.manifests.istio.objects import (
    ROOT_NAMESPACE,
    Action,
    AuthorizationPolicy,
    Condition,
    Operation,
    Rule,
    Source,
)
from trustusbank.mesh.authz.match import (
    SPIFFE_PREFIX,
    Clause,
    Group,
    L4Match,
    Network,
    Scope,
    ServiceAccountMatch,
    StringMatch,
    ZtunnelPolicy,
    group_can_match,
)

JsonPath = tuple[str | int, ...]

L4_WHEN_KEYS = frozenset(
    {"source.ip", "source.namespace", "source.principal", "destination.ip", "destination.port"}
)
HTTP_OPERATION_FIELDS = ("hosts", "notHosts", "methods", "notMethods", "paths", "notPaths")
HTTP_SOURCE_FIELDS = ("remoteIpBlocks", "notRemoteIpBlocks", "requestPrincipals", "notRequestPrincipals")
IGNORED_SOURCE_FIELDS = ("trustDomains", "notTrustDomains")

# istiod's status texts (authorization.go), kept verbatim so our lint output reads like `kubectl get`.
HTTP_RULE_FMT = (
    "ztunnel does not support HTTP attributes (found: {found}). "
    "In ambient mode you must use a waypoint proxy to enforce HTTP rules. {boilerplate}"
)
DENY_NO_EFFECT = (
    "After omitting unsupported HTTP attributes, this DENY policy has no enforceable rules at ztunnel "
    "and will have no effect. Deploy a waypoint proxy and use a targetRef to enforce this policy."
)
DENY_MIXED = (
    "DENY policy with HTTP attributes is enforced without the HTTP rules. "
    "This will be more restrictive than requested."
)
ALLOW_DROPPED = (
    "Within an ALLOW policy, rules matching HTTP attributes are omitted. "
    "This will be more restrictive than requested."
)
UNSUPPORTED_ACTION_FMT = "ztunnel does not support the {action} action"


@dataclass(frozen=True)
class Finding:
    """One thing about a policy that a reader of its YAML would not expect at ztunnel.

    `rule` is the index in `spec.rules` (None: the policy as a whole); `field` is the API
    field or `when` key concerned; `path` points into the document, for a line number.
    """

    policy: str
    rule: int | None
    field: str
    path: JsonPath
    message: str

    def __str__(self) -> str:
        where = f"rules[{self.rule}]" if self.rule is not None else "policy"
        return f"{self.policy} {where} {self.field}: {self.message}"


@dataclass(frozen=True)
class ZtunnelView:
    """A policy as ztunnel receives it. `enforced` is None when istiod sends ztunnel nothing."""

    policy: AuthorizationPolicy
    enforced: ZtunnelPolicy | None
    status: str | None
    findings: tuple[Finding, ...]

    @property
    def has_effect(self) -> bool:
        """Whether ztunnel can ever act on it (an ALLOW with no groups still denies by existing)."""
        if self.enforced is None or self.enforced.dry_run:
            return False
        return self.enforced.action == Action.ALLOW or self.enforced.has_effective_rules


def scope_of(policy: AuthorizationPolicy, root_namespace: str = ROOT_NAMESPACE) -> Scope:
    if policy.selector is not None:
        return Scope.WORKLOAD_SELECTOR
    return Scope.GLOBAL if policy.namespace == root_namespace else Scope.NAMESPACE


def ztunnel_view(policy: AuthorizationPolicy, root_namespace: str = ROOT_NAMESPACE) -> ZtunnelView:
    """Convert one policy the way istiod does for ztunnel, saying what was lost."""
    ref = policy.ref
    if policy.target_refs:
        message = (
            "has targetRefs, so it is for a waypoint or gateway; ztunnel never receives it "
            "(enforced only where the target's proxy runs)"
        )
        return ZtunnelView(
            policy, None, None, (Finding(ref, None, "targetRefs", _spec("targetRefs"), message),)
        )
    findings = list(_policy_findings(policy))
    if policy.action in (Action.AUDIT, Action.CUSTOM):
        unsupported = UNSUPPORTED_ACTION_FMT.format(action=policy.action.value)
        findings.insert(0, Finding(ref, None, "action", _spec("action"), _UNSUPPORTED_EFFECT[policy.action]))
        return ZtunnelView(policy, None, unsupported, tuple(findings))

    enforced, rule_findings, http_found = convert(policy, policy.action, root_namespace)
    findings += rule_findings
    status: str | None = None
    if http_found:
        if policy.action == Action.DENY and not enforced.has_effective_rules:
            boilerplate = DENY_NO_EFFECT
        elif policy.action == Action.DENY:
            boilerplate = DENY_MIXED
        else:
            boilerplate = ALLOW_DROPPED
        status = HTTP_RULE_FMT.format(found=", ".join(sorted(http_found)), boilerplate=boilerplate)
    findings += _outcome_findings(policy, enforced, bool(http_found))
    return ZtunnelView(policy, enforced, status, tuple(findings))


_UNSUPPORTED_EFFECT = {
    Action.AUDIT: ("AUDIT is not sent to ztunnel: ztunnel neither records nor enforces it"),
    Action.CUSTOM: (
        "CUSTOM is not sent to ztunnel, so it is silently not enforced there: the external "
        "authorizer is never asked and the selected workloads are as open as without it"
    ),
}


def convert(
    policy: AuthorizationPolicy, action: Action, root_namespace: str = ROOT_NAMESPACE
) -> tuple[ZtunnelPolicy, list[Finding], set[str]]:
    """The ztunnel form of `policy` under `action` (ALLOW semantics are used to audit an AUDIT policy).

    Returns the policy, per-rule findings, and the HTTP attribute names istiod would report.
    """
    enforced_action: Literal[Action.ALLOW, Action.DENY] = (
        Action.DENY if action == Action.DENY else Action.ALLOW
    )
    groups: list[Group] = []
    findings: list[Finding] = []
    http_found: set[str] = set()
    for index, rule in enumerate(policy.rules):
        group, http = _convert_rule(rule, index, policy.namespace)
        http_found.update(name for name, _ in http)
        dropped = enforced_action == Action.ALLOW and bool(http)
        for name, path in http:
            findings.append(Finding(policy.ref, index, name, path, _http_message(name, dropped, group)))
        if not dropped:
            groups.append(group)
            if not http and not group_can_match(group):
                findings.append(_empty_clause_finding(policy.ref, index))
    enforced = ZtunnelPolicy(
        name=policy.name,
        namespace=policy.namespace,
        scope=scope_of(policy, root_namespace),
        action=enforced_action,
        groups=tuple(groups),
        dry_run=policy.dry_run,
    )
    return enforced, findings, http_found


def _http_message(name: str, dropped: bool, group: Group) -> str:
    what = f"`{name}` is an HTTP attribute, which ztunnel cannot see"
    if dropped:
        return f"{what}: this ALLOW rule is dropped and never matches (allows less than written)"
    if group_can_match(group):
        return f"{what}: it is removed and the rule's L4 part is enforced alone (denies more than written)"
    return (
        f"{what}: it is removed, leaving an empty clause that ztunnel skips, "
        "so this DENY rule never matches (blocks nothing)"
    )


def _empty_clause_finding(ref: str, index: int) -> Finding:
    return Finding(
        ref,
        index,
        "rule",
        ("spec", "rules", index),
        "a from/to/when clause has no field ztunnel can match (e.g. only trustDomains or unparsable "
        "ports), so ztunnel skips it and this rule never matches",
    )


def _outcome_findings(policy: AuthorizationPolicy, enforced: ZtunnelPolicy, http: bool) -> Iterator[Finding]:
    ref = policy.ref
    if policy.action == Action.DENY and policy.rules and not enforced.has_effective_rules:
        message = (
            DENY_NO_EFFECT if http else "this DENY policy has no rule ztunnel can match; it has no effect"
        )
        yield Finding(ref, None, "rules", _spec("rules"), message)
    if policy.action == Action.ALLOW and policy.rules and not enforced.has_effective_rules:
        yield Finding(
            ref,
            None,
            "rules",
            _spec("rules"),
            "no rule of this ALLOW policy can match at ztunnel, yet the policy still exists: every "
            "connection to the workloads it applies to is denied unless another ALLOW policy matches",
        )


def _policy_findings(policy: AuthorizationPolicy) -> Iterator[Finding]:
    ref = policy.ref
    if policy.selector is not None and not policy.selector.match_labels:
        message = (
            "selector has no matchLabels: istiod gives the policy workload scope with no labels, so it "
            "applies to no workload; remove `selector` to apply it to the whole namespace"
        )
        yield Finding(ref, None, "selector", _spec("selector"), message)
    if policy.dry_run:
        message = (
            "dry-run: never enforced. istiod sends it to ztunnel only with "
            "AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY, and ztunnel then only logs matches"
        )
        yield Finding(ref, None, "metadata.annotations", ("metadata", "annotations"), message)
    for i, rule in enumerate(policy.rules):
        for j, source in enumerate(rule.sources):
            base: JsonPath = ("spec", "rules", i, "from", j, "source")
            for name in ("principals", "notPrincipals"):
                for k, value in enumerate(getattr(source, _attr(name))):
                    if value.startswith(SPIFFE_PREFIX):
                        message = (
                            f"{value!r} never matches: principals are written without `spiffe://` "
                            f"(use {value[len(SPIFFE_PREFIX) :]!r})"
                        )
                        yield Finding(ref, i, name, (*base, name, k), message)
            for name in ("principals", "notPrincipals", "namespaces", "notNamespaces"):
                for k, value in enumerate(getattr(source, _attr(name))):
                    if "*" in value.strip("*") and value != "*":
                        message = (
                            f"{value!r}: `*` only works as a prefix or suffix; here it is matched literally"
                        )
                        yield Finding(ref, i, name, (*base, name, k), message)
            for name in IGNORED_SOURCE_FIELDS:
                if getattr(source, _attr(name)):
                    message = (
                        f"`{name}` is not sent to ztunnel and istiod reports nothing: at ztunnel this "
                        "source behaves as if the field were absent"
                    )
                    yield Finding(ref, i, name, (*base, name), message)


def _convert_rule(rule: Rule, index: int, namespace: str) -> tuple[Group, list[tuple[str, JsonPath]]]:
    """One rule as ztunnel clauses (to, from, then one per `when`), and the HTTP fields it used."""
    base: JsonPath = ("spec", "rules", index)
    http: list[tuple[str, JsonPath]] = []
    clauses: list[Clause] = []
    for j, op in enumerate(rule.operations):
        where = (*base, "to", j, "operation")
        http += [(n, (*where, n)) for n in HTTP_OPERATION_FIELDS if getattr(op, _attr(n))]
    if rule.operations:
        clauses.append(tuple(_operation_match(op) for op in rule.operations))
    for j, source in enumerate(rule.sources):
        where = (*base, "from", j, "source")
        http += [(n, (*where, n)) for n in HTTP_SOURCE_FIELDS if getattr(source, _attr(n))]
    if rule.sources:
        clauses.append(tuple(_source_match(source, namespace) for source in rule.sources))
    for k, condition in enumerate(rule.conditions):
        if condition.key not in L4_WHEN_KEYS:
            http.append((condition.key, (*base, "when", k, "key")))
        clauses.append((_condition_match(condition),))
    return tuple(clauses), http


def _operation_match(op: Operation) -> L4Match:
    return L4Match(destination_ports=_ports(op.ports), not_destination_ports=_ports(op.not_ports))


def _source_match(source: Source, namespace: str) -> L4Match:
    return L4Match(
        source_ips=_networks(source.ip_blocks),
        not_source_ips=_networks(source.not_ip_blocks),
        namespaces=_strings(source.namespaces),
        not_namespaces=_strings(source.not_namespaces),
        service_accounts=_service_accounts(source.service_accounts, namespace),
        not_service_accounts=_service_accounts(source.not_service_accounts, namespace),
        principals=_strings(source.principals),
        not_principals=_strings(source.not_principals),
    )


def _condition_match(c: Condition) -> L4Match:
    """A `when` on an L4 key fills one field pair; any other key leaves the match empty."""
    if c.key == "source.namespace":
        return L4Match(namespaces=_strings(c.values), not_namespaces=_strings(c.not_values))
    if c.key == "source.principal":
        return L4Match(principals=_strings(c.values), not_principals=_strings(c.not_values))
    if c.key == "source.ip":
        return L4Match(source_ips=_networks(c.values), not_source_ips=_networks(c.not_values))
    if c.key == "destination.ip":
        return L4Match(destination_ips=_networks(c.values), not_destination_ips=_networks(c.not_values))
    if c.key == "destination.port":
        return L4Match(destination_ports=_ports(c.values), not_destination_ports=_ports(c.not_values))
    return L4Match()


def _strings(values: tuple[str, ...]) -> tuple[StringMatch, ...]:
    return tuple(StringMatch.from_pattern(v) for v in values)


def _service_accounts(values: tuple[str, ...], namespace: str) -> tuple[ServiceAccountMatch, ...]:
    # `ns/sa`, or a bare `sa` meaning the policy's own namespace.
    return tuple(
        ServiceAccountMatch(*v.split("/", 1)) if "/" in v else ServiceAccountMatch(namespace, v)
        for v in values
    )


def _ports(values: tuple[str, ...]) -> tuple[int, ...]:
    # istiod skips what does not parse as a port number; validation reports it before we get here.
    return tuple(int(v) for v in values if v.isascii() and v.isdigit() and int(v) <= 65535)


def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    result: list[Network] = []
    for value in values:
        try:
            result.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            continue  # as istiod: unparsable entries are skipped (and rejected earlier by validation)
    return tuple(result)


def _attr(api_name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in api_name)


def _spec(*path: str | int) -> JsonPath:
    return ("spec", *path)
