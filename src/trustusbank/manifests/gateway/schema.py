"""What a cluster would refuse in a Gateway, HTTPRoute, AgentgatewayBackend or AgentgatewayPolicy,
and what the embedded waypoint cannot honour, said before either gets the manifest.

Field names and limits follow the real CRDs: Gateway API v1 for Gateway and HTTPRoute, and
agentgateway's `controller/api/v1alpha1/agentgateway` types (and their generated CRDs) for the
two agentgateway kinds. The checks repeat those CRDs' CEL rules. A field the real CRD has but
the embedded runtime does not implement is named in the schema as *unsupported*: it gets its
own message instead of "unknown field", because it is not a typo, and it must not be skipped
silently either. Errors are `(path, message)` from the document root, as for every other kind.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import cel

from trustusbank.manifests.manifest import JsonPath
from trustusbank.manifests.schema import (
    FieldError,
    array_schema,
    check_spec,
    integer_schema,
    map_schema,
    object_schema,
    string_schema,
    unsupported,
)

AGENTGATEWAY_CLASSES = ("enterprise-agentgateway-waypoint", "agentgateway-waypoint", "agentgateway")
GATEWAY_GROUP = "gateway.networking.k8s.io"
AGENTGATEWAY_GROUP = "agentgateway.dev"

_NOT_EMBEDDED = "agentgateway has this field, the embedded waypoint does not implement it"
# Every object here refuses its unsupported fields with this group's sentence; a field that
# needs its own reason is declared with `unsupported(why)`.
_object = functools.partial(object_schema, why=_NOT_EMBEDDED)

_NAME = string_schema(1, 253)
_PORT = integer_schema(1, 65535)
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")

# --- Gateway (gateway.networking.k8s.io v1) -------------------------------------------------------

_ALLOWED_ROUTES = _object(
    {
        "namespaces": _object(
            {
                "from": string_schema(enum=("All", "Same", "Selector", "None")),
                "selector": _object(
                    {"matchLabels": map_schema(string_schema())}, unsupported=("matchExpressions",)
                ),
            }
        ),
        "kinds": array_schema(
            _object({"group": string_schema(max_length=253), "kind": string_schema(1, 63)}, ("kind",))
        ),
    }
)
_LISTENER = _object(
    {
        "name": _NAME,
        "hostname": string_schema(1, 253),
        "port": _PORT,
        "protocol": string_schema(enum=("HTTP", "HTTPS", "TLS", "TCP", "UDP", "HBONE")),
        "allowedRoutes": _ALLOWED_ROUTES,
    },
    required=("name", "port", "protocol"),
    unsupported=("tls",),
)
GATEWAY_SPEC: dict[str, Any] = _object(
    {"gatewayClassName": _NAME, "listeners": array_schema(_LISTENER, 1, 64)},
    required=("gatewayClassName", "listeners"),
    unsupported=("addresses", "infrastructure", "backendTLS", "allowedListeners", "tls", "defaultScope"),
)

# --- HTTPRoute (gateway.networking.k8s.io v1) -----------------------------------------------------

_PARENT_REF = _object(
    {
        "group": string_schema(max_length=253),
        "kind": string_schema(1, 63),
        "namespace": string_schema(1, 63),
        "name": _NAME,
        "sectionName": _NAME,
        "port": _PORT,
    },
    required=("name",),
)
_HEADER_VALUE = _object(
    {"name": string_schema(1, 256), "value": string_schema(max_length=4096)}, ("name", "value")
)
_HEADER_MODIFIER = _object(
    {
        "set": array_schema(_HEADER_VALUE, max_items=16),
        "add": array_schema(_HEADER_VALUE, max_items=16),
        "remove": array_schema(string_schema(1, 256), max_items=16),
    }
)
_URL_REWRITE = _object(
    {
        "path": _object(
            {
                "type": string_schema(enum=("ReplaceFullPath", "ReplacePrefixMatch")),
                "replaceFullPath": string_schema(max_length=1024),
                "replacePrefixMatch": string_schema(max_length=1024),
            },
            required=("type",),
        )
    },
    unsupported=("hostname",),
)
_FILTER_TYPES = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "ExtensionRef",
    "CORS",
    "ExternalAuth",
)
_SUPPORTED_FILTERS = {"RequestHeaderModifier": "requestHeaderModifier", "URLRewrite": "urlRewrite"}
_FILTER = _object(
    {
        "type": string_schema(enum=_FILTER_TYPES),
        "requestHeaderModifier": _HEADER_MODIFIER,
        "urlRewrite": _URL_REWRITE,
    },
    required=("type",),
    unsupported=(
        "responseHeaderModifier",
        "requestMirror",
        "requestRedirect",
        "extensionRef",
        "cors",
        "externalAuth",
    ),
)
_MATCH = _object(
    {
        "path": _object(
            {
                "type": string_schema(enum=("Exact", "PathPrefix", "RegularExpression")),
                "value": string_schema(max_length=1024),
            }
        ),
        "headers": array_schema(
            _object(
                {
                    "type": string_schema(enum=("Exact", "RegularExpression")),
                    "name": string_schema(1, 256),
                    "value": string_schema(1, 4096),
                },
                required=("name", "value"),
            ),
            max_items=16,
        ),
        "method": string_schema(enum=_HTTP_METHODS),
    },
    unsupported=("queryParams",),
)
_BACKEND_REF = _object(
    {
        "group": string_schema(max_length=253),
        "kind": string_schema(1, 63),
        "name": _NAME,
        "namespace": string_schema(1, 63),
        "port": _PORT,
        "weight": integer_schema(0, 1000000),
    },
    required=("name",),
    unsupported=("filters",),
)
_RULE = _object(
    {
        "name": _NAME,
        "matches": array_schema(_MATCH, max_items=64),
        "filters": array_schema(_FILTER, max_items=16),
        "backendRefs": array_schema(_BACKEND_REF, max_items=16),
    },
    unsupported=("timeouts", "retry", "sessionPersistence"),
)
HTTP_ROUTE_SPEC: dict[str, Any] = _object(
    {
        "parentRefs": array_schema(_PARENT_REF, max_items=32),
        "hostnames": array_schema(string_schema(1, 253), max_items=16),
        "rules": array_schema(_RULE, max_items=16),
    }
)

# --- AgentgatewayBackend (agentgateway.dev v1alpha1) ----------------------------------------------

_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_MCP_STATIC = _object(
    {
        "host": string_schema(1, 256),
        "backendRef": _object({"name": string_schema()}),
        "port": _PORT,
        "path": string_schema(1, 1024),
        "protocol": string_schema(enum=("SSE", "StreamableHTTP")),
    },
    required=("port",),
    unsupported=("policies",),
)
_MCP_TARGET = _object(
    {"name": string_schema(1, 253, pattern=_DNS_SUBDOMAIN), "static": _MCP_STATIC},
    required=("name",),
    unsupported=("selector",),
)
# `spec.ai`: one LLM provider (agentgateway's `LLMProvider`), of which the embedded waypoint
# serves OpenAI chat completions to a host in the mesh (mesh/waypoint/llm.py).
_AI_PROVIDER = _object(
    {
        "openai": _object({"model": string_schema(1, 256)}, unsupported=("moderation",)),
        "host": string_schema(1, 256),
        "port": _PORT,
        "path": string_schema(1, 1024),
        "pathPrefix": string_schema(1, 1024),
    },
    unsupported=("azureopenai", "azure", "anthropic", "gemini", "vertexai", "bedrock", "custom"),
)
_AI = _object({"provider": _AI_PROVIDER}, unsupported=("groups",))
AGENTGATEWAY_BACKEND_SPEC: dict[str, Any] = _object(
    {
        "ai": _AI,
        "mcp": _object(
            {
                "targets": array_schema(_MCP_TARGET, 1, 128),
                "sessionRouting": string_schema(enum=("Stateful", "Stateless")),
                "failureMode": string_schema(enum=("FailClosed", "FailOpen")),
                "prefixMode": string_schema(enum=("Always", "Conditional", "Never")),
            },
            required=("targets",),
        ),
    },
    unsupported=("static", "a2a", "aws", "dynamicForwardProxy", "policies"),
)

# --- AgentgatewayPolicy (agentgateway.dev v1alpha1) -----------------------------------------------

_AUTHORIZATION = _object(
    {
        "action": string_schema(enum=("Allow", "Deny", "Require")),
        "policy": _object(
            {"matchExpressions": array_schema(string_schema(1, 16384), 1, 256)},
            required=("matchExpressions",),
        ),
    },
    required=("policy",),
)
_LOCAL_RATE_LIMIT = _object(
    {
        "requests": integer_schema(1),
        "unit": string_schema(enum=("Seconds", "Minutes", "Hours")),
        "burst": integer_schema(0),
        "tokens": unsupported("`tokens` limits count LLM tokens; the embedded waypoint has no LLM backends"),
    },
    required=("unit",),
)
# `traffic.extProc` (agentgateway's `ExtProc`): the external processor the gateway calls on each
# request and response. The real agentgateway speaks gRPC to it, Envoy's ext_proc protocol
# (envoy.service.ext_proc.v3.ExternalProcessor, crates/agentgateway/src/http/ext_proc.rs); the
# embedded waypoint speaks the MCP guard's HTTP/JSON wire (mesh/waypoint/guard_call.py) to a
# Service in the mesh, per MCP message, and always fails closed. `policy lint` warns of the gap.
_EXT_PROC_BACKEND_REF = _object(  # Gateway API's BackendObjectReference
    {
        "group": string_schema(max_length=253),
        "kind": string_schema(1, 63),
        "name": _NAME,
        "namespace": string_schema(1, 63),
        "port": _PORT,
    },
    required=("name",),
)
_EXT_PROC = _object(
    {
        "backendRef": _EXT_PROC_BACKEND_REF,
        "failureMode": string_schema(enum=("FailOpen", "FailClosed")),
        "url": unsupported(
            "an ext_proc `url` is reached outside the mesh; the embedded waypoint calls a processor "
            "by `backendRef` (a Service), over mTLS with its own identity"
        ),
    },
    unsupported=(
        "processingOptions",
        "metadataContext",
        "requestAttributes",
        "responseAttributes",
        "conditional",
    ),
)
_TARGET_REF = _object(
    {
        "group": string_schema(max_length=253),
        "kind": string_schema(1, 63),
        "name": _NAME,
        "sectionName": _NAME,
        "port": _PORT,
    },
    required=("group", "kind", "name"),
)
AGENTGATEWAY_POLICY_SPEC: dict[str, Any] = _object(
    {
        "targetRefs": array_schema(_TARGET_REF, 1, 16),
        "traffic": _object(
            {
                "authorization": _AUTHORIZATION,
                "extProc": _EXT_PROC,
                "rateLimit": _object(
                    {"local": array_schema(_LOCAL_RATE_LIMIT, 1, 16)}, unsupported=("global", "conditional")
                ),
            },
            unsupported=(
                "phase",
                "transformation",
                "extAuth",
                "cors",
                "csrf",
                "headerModifiers",
                "hostRewrite",
                "timeouts",
                "retry",
                "jwtAuthentication",
                "basicAuthentication",
                "apiKeyAuthentication",
                "buffer",
                "delay",
                "directResponse",
            ),
        ),
        "backend": _object(
            {"mcp": _object({"authorization": _AUTHORIZATION}, unsupported=("authentication", "guardrails"))},
            unsupported=("tcp", "tls", "http", "tunnel", "auth", "ai", "transformation", "health", "extAuth"),
        ),
    },
    unsupported=("targetSelectors", "strategy", "frontend"),
)

# The targetRefs agentgateway's CRD accepts (its CEL rule on targetRefs), and the ones the
# embedded waypoint attaches.
_TARGET_KINDS = {
    ("", "Service"),
    (AGENTGATEWAY_GROUP, "AgentgatewayBackend"),
    (GATEWAY_GROUP, "Gateway"),
    (GATEWAY_GROUP, "HTTPRoute"),
    (GATEWAY_GROUP, "GRPCRoute"),
    (GATEWAY_GROUP, "ListenerSet"),
    ("inference.networking.k8s.io", "InferencePool"),
}
_EMBEDDED_TARGET_KINDS = {"Gateway", "HTTPRoute", "AgentgatewayBackend"}
_TRAFFIC_TARGET_KINDS = {"Gateway", "HTTPRoute", "GRPCRoute", "ListenerSet", "InferencePool"}


def check_gateway(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, GATEWAY_SPEC, _gateway)


def check_http_route(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, HTTP_ROUTE_SPEC, _http_route)


def check_agentgateway_backend(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, AGENTGATEWAY_BACKEND_SPEC, _backend)


def check_agentgateway_policy(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, AGENTGATEWAY_POLICY_SPEC, _policy)


def _gateway(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    class_name = spec["gatewayClassName"]
    if class_name not in AGENTGATEWAY_CLASSES:
        message = (
            f"gatewayClassName {class_name!r}: the embedded runtime runs only agentgateway's classes "
            f"({', '.join(AGENTGATEWAY_CLASSES)})"
        )
        yield ("spec", "gatewayClassName"), message
    seen: set[str] = set()
    for index, listener in enumerate(spec["listeners"]):
        path: JsonPath = ("spec", "listeners", index)
        if listener["name"] in seen:
            yield (*path, "name"), f"listener name {listener['name']!r} must be unique within the Gateway"
        seen.add(listener["name"])
        if listener["protocol"] in ("HTTPS", "TLS"):
            yield (*path, "protocol"), f"{listener['protocol']} listeners need `tls`, which is not supported"
        namespaces = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
        if namespaces.get("from") == "Selector" and "selector" not in namespaces:
            yield (*path, "allowedRoutes", "namespaces"), "`from: Selector` requires `selector`"


def _http_route(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    for index, parent in enumerate(spec.get("parentRefs") or []):
        path: JsonPath = ("spec", "parentRefs", index)
        group, kind = parent.get("group", GATEWAY_GROUP), parent.get("kind", "Gateway")
        if (group, kind) not in ((GATEWAY_GROUP, "Gateway"), ("", "Service")):
            message = (
                f"parentRef {group or 'core'}/{kind}: the embedded runtime attaches routes to a "
                f'Gateway ({GATEWAY_GROUP}) or a Service (group "")'
            )
            yield (*path, "kind"), message
    for index, hostname in enumerate(spec.get("hostnames") or []):
        if not _valid_hostname(hostname):
            yield ("spec", "hostnames", index), f"invalid hostname {hostname!r}"
    names: set[str] = set()
    for index, rule in enumerate(spec.get("rules") or []):
        path = ("spec", "rules", index)
        if "name" in rule:
            if rule["name"] in names:
                yield (*path, "name"), f"rule name {rule['name']!r} must be unique within the route"
            names.add(rule["name"])
        yield from _rule(path, rule)


def _rule(path: JsonPath, rule: Mapping[str, Any]) -> Iterator[FieldError]:
    matches = rule.get("matches") or [{}]
    for m, match in enumerate(rule.get("matches") or []):
        where: JsonPath = (*path, "matches", m)
        match_path = match.get("path") or {}
        kind, value = match_path.get("type", "PathPrefix"), match_path.get("value", "/")
        if kind == "RegularExpression":
            yield (*where, "path", "type"), "not supported: RegularExpression path matches (semantics vary)"
        elif not value.startswith("/"):
            yield (*where, "path", "value"), "must be an absolute path (start with '/')"
        elif "//" in value or "/./" in value or "/../" in value:
            yield (*where, "path", "value"), "must not contain '//', '/./' or '/../'"
        for h, header in enumerate(match.get("headers") or []):
            if header.get("type") == "RegularExpression":
                yield (*where, "headers", h, "type"), "not supported: RegularExpression header matches"
    filter_types: list[str] = []
    for f, item in enumerate(rule.get("filters") or []):
        where = (*path, "filters", f)
        kind = item["type"]
        filter_types.append(kind)
        field = _SUPPORTED_FILTERS.get(kind)
        if field is None:
            yield (*where, "type"), f"not supported: {kind} filters"
            continue
        if field not in item:
            yield where, f"filter.{field} must be specified for {kind} filter.type"
        others = [key for key in item if key in _SUPPORTED_FILTERS.values() and key != field]
        if others:
            yield where, f"filter.{others[0]} must be nil if the filter.type is not {_type_of(others[0])}"
        if kind == "URLRewrite":
            yield from _url_rewrite(where, item.get("urlRewrite") or {}, matches)
    for kind in set(filter_types):
        if filter_types.count(kind) > 1 and kind in ("RequestHeaderModifier", "URLRewrite"):
            yield (*path, "filters"), f"{kind} filter cannot be repeated"
    refs = rule.get("backendRefs") or []
    if not refs:
        yield path, "a rule needs backendRefs: the embedded waypoint has no redirect or direct response"
    elif all(ref.get("weight", 1) == 0 for ref in refs):
        yield (*path, "backendRefs"), "every backendRef has weight 0, so every request would fail with 500"
    for b, ref in enumerate(refs):
        where = (*path, "backendRefs", b)
        group, kind = ref.get("group", ""), ref.get("kind", "Service")
        if (group, kind) == ("", "Service"):
            if "port" not in ref:
                yield where, "Must have port for Service reference"
        elif (group, kind) != (AGENTGATEWAY_GROUP, "AgentgatewayBackend"):
            message = (
                f"backendRef {group or 'core'}/{kind}: the embedded waypoint sends to a Service or "
                f"an AgentgatewayBackend ({AGENTGATEWAY_GROUP})"
            )
            yield (*where, "kind"), message


def _url_rewrite(
    path: JsonPath, rewrite: Mapping[str, Any], matches: list[Mapping[str, Any]]
) -> Iterator[FieldError]:
    rewrite_path = rewrite.get("path")
    if rewrite_path is None:
        return
    kind = rewrite_path["type"]
    field = "replacePrefixMatch" if kind == "ReplacePrefixMatch" else "replaceFullPath"
    other = "replaceFullPath" if field == "replacePrefixMatch" else "replacePrefixMatch"
    where: JsonPath = (*path, "urlRewrite", "path")
    if field not in rewrite_path:
        yield where, f"{field} must be specified when type is set to '{kind}'"
    if other in rewrite_path:
        yield where, f"{other} must be nil when type is set to '{kind}'"
    if kind == "ReplacePrefixMatch" and any(
        (m.get("path") or {}).get("type", "PathPrefix") != "PathPrefix" for m in matches
    ):
        yield (
            where,
            "When using URLRewrite filter with path.replacePrefixMatch, "
            "exactly one PathPrefix match must be specified",
        )


def _backend(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    kinds = [key for key in ("ai", "static", "dynamicForwardProxy", "mcp", "aws", "a2a") if key in spec]
    if len(kinds) != 1:
        yield (
            ("spec",),
            "exactly one of the fields in [ai static dynamicForwardProxy mcp aws a2a] must be set",
        )
    if spec.get("ai") is not None:
        yield from _ai(spec["ai"])
    mcp = spec.get("mcp")
    if mcp is None:
        return
    targets = mcp["targets"]
    names = [t["name"] for t in targets]
    for index, name in enumerate(names):
        if name in names[:index]:
            yield ("spec", "mcp", "targets", index, "name"), f"duplicate target name {name!r}"
    if len(targets) > 1:
        message = (
            "not supported: several targets on one backend (agentgateway multiplexes them and "
            "prefixes tool names); the embedded waypoint serves one target per backend"
        )
        yield ("spec", "mcp", "targets"), message
    for index, target in enumerate(targets):
        path: JsonPath = ("spec", "mcp", "targets", index)
        if ("selector" in target) == ("static" in target):
            yield path, "exactly one of the fields in [selector static] must be set"
        static = target.get("static")
        if static is not None and ("host" in static) == ("backendRef" in static):
            yield (*path, "static"), "exactly one of the fields in [host backendRef] must be set"
        if static is not None and not str(static.get("path", "/")).startswith("/"):
            yield (*path, "static", "path"), "must start with '/'"


def _ai(ai: Mapping[str, Any]) -> Iterator[FieldError]:
    """The CRD's rules on `spec.ai`, then what the embedded waypoint needs on top."""
    path: JsonPath = ("spec", "ai")
    provider = ai.get("provider")
    if provider is None:
        yield path, "exactly one of the fields in [provider groups] must be set"
        return
    path = (*path, "provider")
    kinds = ("openai", "azureopenai", "azure", "anthropic", "gemini", "vertexai", "bedrock", "custom")
    if sum(kind in provider for kind in kinds) != 1:
        yield path, f"exactly one of the fields in [{' '.join(kinds)}] must be set"
    if ("host" in provider) != ("port" in provider):
        yield path, "both host and port must be set together"
    if "path" in provider and "pathPrefix" in provider:
        yield path, "path and pathPrefix are mutually exclusive"
    if "pathPrefix" in provider and "host" not in provider:
        yield path, "pathPrefix requires host to be set"
    for key in ("path", "pathPrefix"):
        if key in provider and not str(provider[key]).startswith("/"):
            yield (*path, key), "must start with '/'"
    if "host" not in provider:
        message = (
            "not supported: the provider's public endpoint (api.openai.com over TLS); the embedded "
            "waypoint reaches models in the mesh only, so set host and port to the model's Service"
        )
        yield path, message


def _policy(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    if "targetRefs" not in spec and "targetSelectors" not in spec:
        yield ("spec",), "exactly one of the fields in [targetRefs targetSelectors] must be set"
    if not any(key in spec for key in ("traffic", "frontend", "backend")):
        yield ("spec",), "At least one of traffic, frontend, or backend must be provided."
    refs = spec.get("targetRefs") or []
    for index, ref in enumerate(refs):
        path: JsonPath = ("spec", "targetRefs", index)
        key = (ref["group"], ref["kind"])
        if key not in _TARGET_KINDS:
            message = (
                "targetRefs may only reference Gateway, HTTPRoute, GRPCRoute, ListenerSet, Service, "
                "AgentgatewayBackend, or InferencePool resources"
            )
            yield path, message
        elif ref["kind"] not in _EMBEDDED_TARGET_KINDS:
            message = (
                f"not supported: policies on a {ref['kind']} "
                "(the embedded waypoint attaches them to Gateway, HTTPRoute, AgentgatewayBackend)"
            )
            yield (*path, "kind"), message
        if "port" in ref:
            yield (*path, "port"), "port may only be set on frontend-only policies (not traffic or backend)"
        if "sectionName" in ref and "port" in ref:
            yield path, "at most one of the fields in [sectionName port] may be set"
    if len({ref["kind"] for ref in refs}) > 1:
        yield ("spec", "targetRefs"), "Only one Kind of targetRef can be set on one policy"
    if "traffic" in spec and any(ref["kind"] not in _TRAFFIC_TARGET_KINDS for ref in refs):
        message = (
            "the 'traffic' field can only target a Gateway, ListenerSet, GRPCRoute, "
            "HTTPRoute, or InferencePool"
        )
        yield ("spec", "traffic"), message
    backend = spec.get("backend") or {}
    if "mcp" in backend:
        if any(ref["kind"] == "Service" for ref in refs):
            yield ("spec", "backend", "mcp"), "backend.mcp may not be used with a Service target"
        if any(ref["kind"] == "AgentgatewayBackend" and "sectionName" in ref for ref in refs):
            yield ("spec", "backend", "mcp"), "backend.mcp may not target an AgentgatewayBackend sectionName"
    traffic = spec.get("traffic") or {}
    for index, limit in enumerate((traffic.get("rateLimit") or {}).get("local") or []):
        if "requests" not in limit and "tokens" not in limit:
            path = ("spec", "traffic", "rateLimit", "local", index)
            yield path, "exactly one of the fields in [requests tokens] must be set"
    if "rateLimit" in traffic and not (traffic["rateLimit"] or {}):
        yield ("spec", "traffic", "rateLimit"), "at least one of local, global or conditional must be set"
    if "extProc" in traffic:
        yield from _ext_proc(("spec", "traffic", "extProc"), traffic["extProc"])
    for where, authorization in (
        (("spec", "traffic", "authorization"), traffic.get("authorization")),
        (("spec", "backend", "mcp", "authorization"), (backend.get("mcp") or {}).get("authorization")),
    ):
        for index, expression in enumerate(
            ((authorization or {}).get("policy") or {}).get("matchExpressions") or []
        ):
            error = compile_error(expression)
            if error is not None:
                yield (*where, "policy", "matchExpressions", index), f"not a valid CEL expression: {error}"


def _ext_proc(path: JsonPath, ext_proc: Mapping[str, Any]) -> Iterator[FieldError]:
    """The CRD's rules on `traffic.extProc`, then what the embedded waypoint needs on top."""
    if "conditional" not in ext_proc and ("backendRef" in ext_proc) == ("url" in ext_proc):
        yield path, "exactly one of backendRef or url must be set unless conditional is set"
    if ext_proc.get("failureMode") == "FailOpen":
        message = (
            "not supported: failureMode FailOpen (the embedded waypoint never forwards or returns "
            "MCP its processor did not judge: it fails closed)"
        )
        yield (*path, "failureMode"), message
    ref = ext_proc.get("backendRef")
    if ref is None:
        return
    group, kind = ref.get("group", ""), ref.get("kind", "Service")
    if (group, kind) == ("", "Service"):
        if "port" not in ref:
            yield (*path, "backendRef"), "Must have port for Service reference"
    elif (group, kind) == (AGENTGATEWAY_GROUP, "AgentgatewayBackend"):
        message = "not supported: an AgentgatewayBackend as processor (the embedded waypoint calls a Service)"
        yield (*path, "backendRef", "kind"), message
    else:
        message = (
            f"backendRef {group or 'core'}/{kind}: the processor is a Service or an "
            f"AgentgatewayBackend ({AGENTGATEWAY_GROUP})"
        )
        yield (*path, "backendRef", "kind"), message


def compile_error(expression: str) -> str | None:
    """Why `expression` does not compile, or None; agentgateway's controller refuses the same."""
    try:
        cel.compile(expression)
    except Exception as error:  # the library raises ValueError, but any failure means "does not compile"
        return " ".join(str(error).split())
    return None


def _type_of(field: str) -> str:
    return field[0].upper() + field[1:] if field != "urlRewrite" else "URLRewrite"


def _valid_hostname(hostname: str) -> bool:
    """Gateway API's PreciseHostname with an optional leading `*.`; IP addresses are not allowed."""
    name = hostname[2:] if hostname.startswith("*.") else hostname
    labels = name.split(".")
    if all(label.isdigit() for label in labels):
        return False
    return all(
        0 < len(label) <= 63
        and label[0].isalnum()
        and label[-1].isalnum()
        and all(c.isalnum() or c == "-" for c in label)
        and label == label.lower()
        for label in labels
    )
