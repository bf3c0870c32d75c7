"""What a cluster would refuse in an AuthorizationPolicy or PeerAuthentication, said before it gets there.

Two layers, as on a cluster: the CRD's structural schema (types and field names; on a
cluster an unknown field is pruned silently, here it is an error with its path), then
the checks istio's validating webhook and the CRD's CEL rules make (istio
`pkg/config/validation/validation.go`, `pkg/config/security/security.go`). The checks
run only on a document that passed the schema, so they may trust its types.
Errors are `(path, message)` with the path from the document root, like every other
kind's validator in `manifests.kinds`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from trustusbank.manifests.istio.objects import OPERATION_FIELDS, SOURCE_FIELDS
from trustusbank.manifests.manifest import JsonPath
from trustusbank.manifests.schema import (
    FieldError,
    array_schema,
    map_schema,
    object_schema,
    string_schema,
    strings_schema,
)

_SELECTOR = object_schema({"matchLabels": map_schema(string_schema())})
_TARGET_REF = object_schema(
    {
        "group": string_schema(max_length=253),
        "kind": string_schema(1, 63),
        "name": string_schema(1, 253),
        "namespace": string_schema(),
    },
    required=("kind", "name"),
)
_SOURCE = object_schema(
    {
        name: strings_schema(16, 320)
        if name in ("serviceAccounts", "notServiceAccounts")
        else strings_schema()
        for name in SOURCE_FIELDS
    }
)
_OPERATION = object_schema({name: strings_schema() for name in OPERATION_FIELDS})
_CONDITION = object_schema(
    {"key": string_schema(), "values": strings_schema(), "notValues": strings_schema()}, ("key",)
)
_RULE = object_schema(
    {
        "from": array_schema(object_schema({"source": _SOURCE}), max_items=512),
        "to": array_schema(object_schema({"operation": _OPERATION})),
        "when": array_schema(_CONDITION),
    }
)

AUTHORIZATION_POLICY_SPEC: dict[str, Any] = object_schema(
    {
        "selector": _SELECTOR,
        "targetRef": _TARGET_REF,
        "targetRefs": array_schema(_TARGET_REF, max_items=16),
        "action": string_schema(enum=("ALLOW", "DENY", "AUDIT", "CUSTOM")),
        "provider": object_schema({"name": string_schema()}),
        "rules": array_schema(_RULE, max_items=512),
    }
)

_MTLS = object_schema({"mode": string_schema(enum=("UNSET", "DISABLE", "PERMISSIVE", "STRICT"))})
PEER_AUTHENTICATION_SPEC: dict[str, Any] = object_schema(
    {
        "selector": _SELECTOR,
        "mtls": _MTLS,
        "portLevelMtls": map_schema(_MTLS),
    }
)

# Which `when` keys istio accepts; a key outside this set is refused by the webhook.
_WHEN_EXACT = frozenset(
    {
        "source.ip",
        "remote.ip",
        "source.namespace",
        "source.serviceAccount",
        "source.principal",
        "source.trustDomain",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "destination.ip",
        "destination.port",
        "connection.sni",
    }
)
_WHEN_MAP_PREFIXES = ("request.headers", "request.auth.claims", "experimental.envoy.filters.")
_WHEN_REPLACED = {
    "destination.namespace": "is replaced by the metadata.namespace",
    "destination.name": "is deprecated: only supported in v1alpha1",
    "destination.user": "is deprecated: only supported in v1alpha1",
}
_MAP_KEY = re.compile(r"^[^\[\]]+\[[^\[\]]+\](\[[^\[\]]+\])*$")
_TARGET_KINDS = {("", "Service"), ("networking.istio.io", "ServiceEntry")} | {
    ("gateway.networking.k8s.io", k) for k in ("Gateway", "GatewayClass")
}
_TARGET_KINDS_TEXT = (
    "Service, ServiceEntry (networking.istio.io), Gateway or GatewayClass (gateway.networking.k8s.io)"
)
_MEANINGLESS = (
    "{action} action without `rules` is meaningless as it will never be triggered, "
    "add an empty rule `{{}}` if you want it be triggered for every request"
)


def check_authorization_policy(body: Mapping[str, Any]) -> list[FieldError]:
    spec = body.get("spec") or {}
    return list(_authorization_policy(spec))


def check_peer_authentication(body: Mapping[str, Any]) -> list[FieldError]:
    spec = body.get("spec") or {}
    return list(_peer_authentication(spec))


def _authorization_policy(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    if sum(key in spec for key in ("selector", "targetRef", "targetRefs")) > 1:
        yield ("spec",), "only one of targetRefs or selector can be set"
    yield from _selector(spec)
    refs: list[tuple[JsonPath, Mapping[str, Any]]] = []
    if "targetRef" in spec:
        refs.append((("spec", "targetRef"), spec["targetRef"]))
    refs += [(("spec", "targetRefs", i), r) for i, r in enumerate(spec.get("targetRefs") or [])]
    for path, ref in refs:
        yield from _target_ref(path, ref)

    action = spec.get("action") or "ALLOW"
    rules = spec.get("rules")
    if action == "CUSTOM":
        if rules is None:
            yield ("spec",), _MEANINGLESS.format(action="CUSTOM")
        elif not (spec.get("provider") or {}).get("name"):
            yield ("spec", "provider", "name"), "`provider.name` must not be empty"
    elif "provider" in spec:
        yield ("spec", "provider"), f"`provider` must not be with non CUSTOM action, found {action}"
    if action == "DENY" and not rules:
        yield ("spec",), _MEANINGLESS.format(action="DENY")
    for i, rule in enumerate(rules or []):
        yield from _rule(("spec", "rules", i), rule or {}, action)


def _selector(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    for key, value in labels.items():
        path: JsonPath = ("spec", "selector", "matchLabels", key)
        if key == "":
            yield path, "key must not be empty"
        if "*" in key or "*" in value:
            yield path, f"wildcard is not supported in selector: '{key}={value}'"


def _target_ref(path: JsonPath, ref: Mapping[str, Any]) -> Iterator[FieldError]:
    if ref.get("namespace"):
        message = "targetRef namespace must not be set; cross namespace referencing is not supported"
        yield (*path, "namespace"), message
    group = ref.get("group") or ""
    group = "" if group == "core" else group
    if (group, ref.get("kind")) not in _TARGET_KINDS:
        message = f"targetRef must be to one of {_TARGET_KINDS_TEXT}, not {group}/{ref.get('kind')}"
        yield (*path, "kind"), message


def _rule(path: JsonPath, rule: Mapping[str, Any], action: str) -> Iterator[FieldError]:
    if "from" in rule and not rule["from"]:
        yield (*path, "from"), "`from` must not be empty"
    for j, entry in enumerate(rule.get("from") or []):
        source = (entry or {}).get("source")
        where: JsonPath = (*path, "from", j, "source")
        if source is None:
            yield where, "`from.source` must not be nil"
        elif not any(source.get(name) for name in SOURCE_FIELDS):
            yield where, "`from.source` must not be empty"
        else:
            yield from _source(where, source, action)
    if "to" in rule and not rule["to"]:
        yield (*path, "to"), "`to` must not be empty"
    for j, entry in enumerate(rule.get("to") or []):
        operation = (entry or {}).get("operation")
        where = (*path, "to", j, "operation")
        if operation is None:
            yield where, "`to.operation` must not be nil"
        elif not any(operation.get(name) for name in OPERATION_FIELDS):
            yield where, "`to.operation` must not be empty"
        else:
            yield from _operation(where, operation)
    for k, condition in enumerate(rule.get("when") or []):
        yield from _condition((*path, "when", k), condition, action)


def _source(path: JsonPath, source: Mapping[str, Any], action: str) -> Iterator[FieldError]:
    for name in SOURCE_FIELDS:
        yield from _no_empty(path, name, source.get(name))
    if any(source.get(n) is not None for n in ("serviceAccounts", "notServiceAccounts")) and any(
        source.get(n) is not None for n in ("principals", "notPrincipals", "namespaces", "notNamespaces")
    ):
        yield path, "cannot set serviceAccounts with namespaces or principals"
    for name in ("serviceAccounts", "notServiceAccounts"):
        for k, value in enumerate(source.get(name) or []):
            yield from _service_account((*path, name, k), value)
    for name in ("trustDomains", "notTrustDomains"):
        for k, value in enumerate(source.get(name) or []):
            yield from _wildcard((*path, name, k), value)
            if "/" in value:
                yield (*path, name, k), f"trust domain must not contain '/': {value!r}"
    for name in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
        for k, value in enumerate(source.get(name) or []):
            yield from _ip((*path, name, k), value)
    if action == "CUSTOM":
        for name in SOURCE_FIELDS:
            if source.get(name) and not name.lower().endswith("ipblocks"):
                yield (*path, name), f"{name} is currently not supported with CUSTOM action"


def _operation(path: JsonPath, operation: Mapping[str, Any]) -> Iterator[FieldError]:
    for name in OPERATION_FIELDS:
        yield from _no_empty(path, name, operation.get(name))
    for name in ("ports", "notPorts"):
        for k, value in enumerate(operation.get(name) or []):
            yield from _port((*path, name, k), value)
    for name in ("paths", "notPaths"):
        for k, value in enumerate(operation.get(name) or []):
            if ("{" in value or "}" in value) and not _path_template_ok(value):
                yield (*path, name, k), f"invalid or unsupported path template: {value!r}"


def _condition(path: JsonPath, condition: Mapping[str, Any], action: str) -> Iterator[FieldError]:
    key = condition.get("key") or ""
    if not key:
        yield (*path, "key"), "`key` must not be empty"
        return
    values, not_values = condition.get("values") or [], condition.get("notValues") or []
    if not values and not not_values:
        yield path, f"at least one of `values` or `notValues` must be set for key {key}"
        return
    if key in _WHEN_REPLACED:
        yield (*path, "key"), f"attribute {key} {_WHEN_REPLACED[key]}"
        return
    if key not in _WHEN_EXACT and not key.startswith(_WHEN_MAP_PREFIXES):
        yield (*path, "key"), f"unknown attribute: {key}"
        return
    if key.startswith(_WHEN_MAP_PREFIXES[:2]) and not _MAP_KEY.match(key):
        yield (*path, "key"), f"bad key ({key}): should have format a[b]"
    if action == "CUSTOM" and (
        key in ("source.namespace", "source.serviceAccount", "source.trustDomain", "source.principal")
        or key.startswith("request.auth.")
    ):
        yield (*path, "key"), f"{key} is currently not supported with CUSTOM action"
    for field in ("values", "notValues"):
        for k, value in enumerate(condition.get(field) or []):
            where: JsonPath = (*path, field, k)
            if value == "":
                yield where, f"empty value not allowed, found in {key}"
            elif key in ("source.ip", "remote.ip", "destination.ip"):
                yield from _ip(where, value)
            elif key == "destination.port":
                yield from _port(where, value)
            elif key == "source.serviceAccount":
                yield from _service_account(where, value)
            elif key == "source.trustDomain":
                yield from _wildcard(where, value)


def _peer_authentication(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    yield from _selector(spec)
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    ports = spec.get("portLevelMtls")
    if ports is not None and not ports:
        yield ("spec", "portLevelMtls"), "port level mTLS, if defined, must have at least one element"
    elif ports and not labels:
        yield ("spec", "portLevelMtls"), "mesh/namespace peer authentication cannot have port level mTLS"
    for port in ports or {}:
        text = str(port)
        if not (text.isascii() and text.isdigit() and 0 < int(text) <= 65535):
            yield ("spec", "portLevelMtls", port), "port must be in range 1..65535"


def _no_empty(path: JsonPath, name: str, values: list[str] | None) -> Iterator[FieldError]:
    for k, value in enumerate(values or []):
        if value == "":
            yield (*path, name, k), f"empty value not allowed, found in {name}"


def _service_account(path: JsonPath, value: str) -> Iterator[FieldError]:
    if "*" in value:
        yield path, "wildcard not allowed in serviceAccounts"
    elif value.count("/") > 1 or (value.count("/") == 1 and "" in value.split("/")):
        yield path, f"expected format 'serviceAccount' or 'namespace/serviceAccount', found {value!r}"


def _wildcard(path: JsonPath, value: str) -> Iterator[FieldError]:
    count = value.count("*")
    if count > 1:
        yield path, f"at most one wildcard is allowed: {value!r}"
    elif count == 1 and value != "*" and not value.startswith("*") and not value.endswith("*"):
        yield path, f"wildcard is only allowed at the start or end: {value!r}"


def _ip(path: JsonPath, value: str) -> Iterator[FieldError]:
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        yield path, f"bad {'CIDR range' if '/' in value else 'IP address'} ({value})"


def _port(path: JsonPath, value: str) -> Iterator[FieldError]:
    if not (value.isascii() and value.isdigit() and int(value) <= 65535):
        yield path, f"bad port ({value}): must be a number from 0 to 65535"


def _path_template_ok(path: str) -> bool:
    """Istio's `{*}` / `{**}` path templates: whole segments only, `{**}` last."""
    segments = path.strip("/").split("/")
    seen_any = False
    for segment in segments:
        if segment in ("{*}", "{**}"):
            if seen_any:
                return False
            seen_any = segment == "{**}"
        elif "{" in segment or "}" in segment:
            return False
    return True
