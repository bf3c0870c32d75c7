"""AuthorizationPolicy at a waypoint: `targetRefs` policies, evaluated with their L7 fields.

ztunnel drops what it cannot see; a waypoint sees the HTTP request, so hosts,
methods, paths and header conditions apply as written. Same order as
everywhere in Istio: CUSTOM, DENY, ALLOW. The embedded waypoint has no
external authorizer and no JWT authentication, so CUSTOM fails closed and
request principals never match. An error while deciding denies.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from trustusbank.manifests.istio.objects import (
    Action,
    AuthorizationPolicy,
    Condition,
    Operation,
    PeerIdentity,
    Rule,
    Source,
)
from trustusbank.mesh.authz.evaluate import Decision
from trustusbank.mesh.authz.match import StringMatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpRequest:
    source: PeerIdentity | None
    source_ip: str
    destination_port: int
    host: str
    method: str
    path: str
    headers: Mapping[str, str]

    @property
    def principal(self) -> str | None:
        s = self.source
        return None if s is None else f"{s.trust_domain}/ns/{s.namespace}/sa/{s.service_account}"


def _any(patterns: tuple[str, ...], value: str | None) -> bool:
    return value is not None and any(StringMatch.from_pattern(p).matches(value) for p in patterns)


def _field(positive: tuple[str, ...], negative: tuple[str, ...], value: str | None) -> bool:
    """A field with its `not*` twin: absent fields impose nothing."""
    if positive and not _any(positive, value):
        return False
    return not (negative and _any(negative, value))


def _in_blocks(blocks: tuple[str, ...], ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return any(
        address in ipaddress.ip_network(b if "/" in b else f"{b}/{address.max_prefixlen}") for b in blocks
    )


def _source(source: Source, request: HttpRequest, namespace: str) -> bool:
    identity = request.source
    accounts = tuple(a if "/" in a else f"{namespace}/{a}" for a in source.service_accounts)
    not_accounts = tuple(a if "/" in a else f"{namespace}/{a}" for a in source.not_service_accounts)
    account = f"{identity.namespace}/{identity.service_account}" if identity else None
    checks = [
        _field(source.principals, source.not_principals, request.principal),
        _field(source.namespaces, source.not_namespaces, identity.namespace if identity else None),
        _field(accounts, not_accounts, account),
        _field(source.trust_domains, source.not_trust_domains, identity.trust_domain if identity else None),
        # No JWT authentication here: there is never a request principal.
        _field(source.request_principals, source.not_request_principals, None),
        not source.ip_blocks or _in_blocks(source.ip_blocks, request.source_ip),
        not (source.not_ip_blocks and _in_blocks(source.not_ip_blocks, request.source_ip)),
        not source.remote_ip_blocks or _in_blocks(source.remote_ip_blocks, request.source_ip),
        not (source.not_remote_ip_blocks and _in_blocks(source.not_remote_ip_blocks, request.source_ip)),
    ]
    return all(checks)


def _operation(op: Operation, request: HttpRequest) -> bool:
    host = request.host.rsplit(":", 1)[0].lower() if ":" in request.host else request.host.lower()
    return all(
        [
            _field(tuple(h.lower() for h in op.hosts), tuple(h.lower() for h in op.not_hosts), host),
            _field(op.ports, op.not_ports, str(request.destination_port)),
            _field(op.methods, op.not_methods, request.method),
            _field(op.paths, op.not_paths, request.path),
        ]
    )


def _condition_value(key: str, request: HttpRequest) -> str | None:
    if key.startswith("request.headers[") and key.endswith("]"):
        return request.headers.get(key[len("request.headers[") : -1].lower())
    identity = request.source
    values = {
        "source.ip": request.source_ip,
        "remote.ip": request.source_ip,
        "source.namespace": identity.namespace if identity else None,
        "source.principal": request.principal,
        "source.serviceAccount": f"{identity.namespace}/{identity.service_account}" if identity else None,
        "destination.port": str(request.destination_port),
        "request.method": request.method,
    }
    return values.get(key)  # request.auth.* and unknown keys: absent, so `values` never match


def _condition(condition: Condition, request: HttpRequest) -> bool:
    value = _condition_value(condition.key, request)
    if condition.key in ("source.ip", "remote.ip") and value is not None:
        if condition.values and not _in_blocks(condition.values, value):
            return False
        return not (condition.not_values and _in_blocks(condition.not_values, value))
    return _field(condition.values, condition.not_values, value)


def _rule(rule: Rule, request: HttpRequest, namespace: str) -> bool:
    return (
        (not rule.sources or any(_source(s, request, namespace) for s in rule.sources))
        and (not rule.operations or any(_operation(o, request) for o in rule.operations))
        and all(_condition(c, request) for c in rule.conditions)
    )


def _matches(policy: AuthorizationPolicy, request: HttpRequest) -> bool:
    return any(_rule(rule, request, policy.namespace) for rule in policy.rules)


def authorize_request(policies: Iterable[AuthorizationPolicy], request: HttpRequest) -> Decision:
    """Decide one HTTP request under the policies attached to this waypoint."""
    try:
        active = [p for p in policies if not p.dry_run]
        for policy in active:
            if policy.action == Action.CUSTOM:
                return Decision(
                    False, f"no external authorizer here; failing closed: {policy.ref}", policy.ref
                )
        for policy in active:
            if policy.action == Action.DENY and _matches(policy, request):
                return Decision(False, f"explicitly denied by: {policy.ref}", policy.ref)
        allows = [p for p in active if p.action == Action.ALLOW]
        for policy in allows:
            if _matches(policy, request):
                return Decision(True, f"allowed by: {policy.ref}", policy.ref)
        if allows:
            return Decision(False, "allow policies exist, but none allowed")
        return Decision(True, "no allow policies, allow")
    except Exception as error:
        log.exception("authorization error at the waypoint; denying")
        return Decision(False, f"authorization failed closed: {type(error).__name__}: {error}")
