"""Typed views of the Gateway API and agentgateway kinds: Gateway, HTTPRoute,
AgentgatewayBackend, AgentgatewayPolicy, as written (validated by `schema`).

The waypoint builds its routing table from these (`mesh/waypoint/routes.py`) and `policy lint`
reads them; neither needs the other to know what a field means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trustusbank.manifests.gateway.schema import AGENTGATEWAY_CLASSES, GATEWAY_GROUP
from trustusbank.manifests.manifest import Manifest, namespace_of

PROVIDER_OPENAI = "openai"
COMPLETIONS_SUFFIX = "/chat/completions"

WAYPOINT_NAMESPACE_LABEL = "istio.io/use-waypoint-namespace"
CLUSTER_DOMAIN = "cluster.local"
_ROUTE_PROTOCOLS = ("HTTP", "HTTPS", "HBONE")
_DEFAULT_MCP_PATH = {"StreamableHTTP": "/mcp", "SSE": "/sse"}


def is_waypoint_class(name: str) -> bool:
    """Whether a Gateway of this class is agentgateway's to serve (enterprise, OSS waypoint, OSS)."""
    return name in AGENTGATEWAY_CLASSES


def service_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


# --- typed views of the four kinds ---------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    protocol: str
    hostname: str | None = None
    allowed_from: str = "Same"
    namespace_selector: Mapping[str, str] | None = None
    allowed_kinds: tuple[tuple[str, str], ...] = ()

    def admits(
        self, route_namespace: str, gateway_namespace: str, namespace_labels: Mapping[str, str]
    ) -> bool:
        """Whether `allowedRoutes` lets an HTTPRoute from `route_namespace` attach here."""
        if self.protocol not in _ROUTE_PROTOCOLS:
            return False
        if self.allowed_kinds and (GATEWAY_GROUP, "HTTPRoute") not in self.allowed_kinds:
            return False
        if self.allowed_from == "All":
            return True
        if self.allowed_from == "Same":
            return route_namespace == gateway_namespace
        if self.allowed_from == "Selector":
            wanted = self.namespace_selector or {}
            return all(namespace_labels.get(k) == v for k, v in wanted.items())
        return False


@dataclass(frozen=True)
class Gateway:
    name: str
    namespace: str
    gateway_class: str
    listeners: tuple[Listener, ...]
    manifest: Manifest | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Gateway:
        spec = manifest.body["spec"]
        listeners = []
        for item in spec["listeners"]:
            allowed = item.get("allowedRoutes") or {}
            namespaces = allowed.get("namespaces") or {}
            selector = namespaces.get("selector")
            kinds = tuple((k.get("group", GATEWAY_GROUP), k["kind"]) for k in allowed.get("kinds") or [])
            listeners.append(
                Listener(
                    name=item["name"],
                    port=int(item["port"]),
                    protocol=item["protocol"],
                    hostname=item.get("hostname"),
                    allowed_from=namespaces.get("from", "Same"),
                    namespace_selector=dict(selector.get("matchLabels") or {})
                    if selector is not None
                    else None,
                    allowed_kinds=kinds,
                )
            )
        return cls(
            manifest.name, namespace_of(manifest), spec["gatewayClassName"], tuple(listeners), manifest
        )


@dataclass(frozen=True)
class ParentRef:
    group: str
    kind: str
    name: str
    namespace: str
    section_name: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class PathMatch:
    type: Literal["Exact", "PathPrefix"]
    value: str

    def matches(self, path: str) -> bool:
        if self.type == "Exact":
            return path == self.value
        prefix = self.value.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class RuleMatch:
    path: PathMatch = PathMatch("PathPrefix", "/")
    method: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """(lower-case name, exact value) pairs, all required."""

    def matches(self, path: str, method: str, headers: Mapping[str, str]) -> bool:
        if self.method is not None and method.upper() != self.method:
            return False
        if not self.path.matches(path):
            return False
        return all(headers.get(name) == value for name, value in self.headers)

    @property
    def precedence(self) -> tuple[int, int, int, int]:
        """Smaller sorts first: Exact, then longer prefix, then method, then more headers."""
        return (
            0 if self.path.type == "Exact" else 1,
            -len(self.path.value.rstrip("/")),
            0 if self.method else 1,
            -len(self.headers),
        )


@dataclass(frozen=True)
class URLRewrite:
    type: Literal["ReplacePrefixMatch", "ReplaceFullPath"]
    value: str

    def apply(self, path: str, matched: PathMatch) -> str:
        if self.type == "ReplaceFullPath":
            return self.value
        # Gateway API: the matched prefix is replaced, the rest kept, without doubling '/'.
        rest = path[len(matched.value.rstrip("/")) :]
        return (self.value.rstrip("/") + rest) or "/"


@dataclass(frozen=True)
class HeaderModifier:
    """RequestHeaderModifier; header names compared case-insensitively."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def apply(self, headers: Mapping[str, str]) -> dict[str, str]:
        result = {name.lower(): value for name, value in headers.items()}
        for name, value in self.set:
            result[name.lower()] = value
        for name, value in self.add:
            key = name.lower()
            result[key] = f"{result[key]},{value}" if key in result else value
        for name in self.remove:
            result.pop(name.lower(), None)
        return result


@dataclass(frozen=True)
class BackendRef:
    group: str
    kind: str
    name: str
    namespace: str
    port: int | None = None
    weight: int = 1


@dataclass(frozen=True)
class RouteRule:
    index: int
    name: str | None
    matches: tuple[RuleMatch, ...]
    backend_refs: tuple[BackendRef, ...]
    rewrite: URLRewrite | None = None
    header_modifier: HeaderModifier | None = None


@dataclass(frozen=True)
class HTTPRoute:
    name: str
    namespace: str
    parent_refs: tuple[ParentRef, ...]
    hostnames: tuple[str, ...]
    rules: tuple[RouteRule, ...]
    manifest: Manifest | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> HTTPRoute:
        spec = manifest.body["spec"]
        namespace = namespace_of(manifest)
        parents = tuple(
            ParentRef(
                group=p.get("group", GATEWAY_GROUP),
                kind=p.get("kind", "Gateway"),
                name=p["name"],
                namespace=p.get("namespace", namespace),
                section_name=p.get("sectionName"),
                port=p.get("port"),
            )
            for p in spec.get("parentRefs") or []
        )
        rules = tuple(_rule(index, rule, namespace) for index, rule in enumerate(spec.get("rules") or [{}]))
        return cls(manifest.name, namespace, parents, tuple(spec.get("hostnames") or []), rules, manifest)


def _rule(index: int, body: Mapping[str, Any], namespace: str) -> RouteRule:
    matches = []
    for item in body.get("matches") or [{}]:
        path = item.get("path") or {}
        headers = tuple((h["name"].lower(), h["value"]) for h in item.get("headers") or [])
        matches.append(
            RuleMatch(
                PathMatch(path.get("type", "PathPrefix"), path.get("value", "/")), item.get("method"), headers
            )
        )
    rewrite = modifier = None
    for item in body.get("filters") or []:
        if item["type"] == "URLRewrite" and (item.get("urlRewrite") or {}).get("path"):
            path = item["urlRewrite"]["path"]
            key = "replacePrefixMatch" if path["type"] == "ReplacePrefixMatch" else "replaceFullPath"
            rewrite = URLRewrite(path["type"], path[key])
        elif item["type"] == "RequestHeaderModifier":
            spec = item["requestHeaderModifier"]
            modifier = HeaderModifier(
                tuple((h["name"], h["value"]) for h in spec.get("set") or []),
                tuple((h["name"], h["value"]) for h in spec.get("add") or []),
                tuple(spec.get("remove") or []),
            )
    refs = tuple(
        BackendRef(
            group=ref.get("group", ""),
            kind=ref.get("kind", "Service"),
            name=ref["name"],
            namespace=ref.get("namespace", namespace),
            port=ref.get("port"),
            weight=ref.get("weight", 1),
        )
        for ref in body.get("backendRefs") or []
    )
    return RouteRule(index, body.get("name"), tuple(matches), refs, rewrite, modifier)


@dataclass(frozen=True)
class McpTarget:
    name: str
    host: str
    port: int
    path: str
    protocol: str


@dataclass(frozen=True)
class AgentgatewayBackend:
    name: str
    namespace: str
    targets: tuple[McpTarget, ...]
    session_routing: str = "Stateful"
    manifest: Manifest | None = field(default=None, repr=False, compare=False)
    ai: LlmProvider | None = None
    """`spec.ai`: an LLM provider instead of MCP targets."""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> AgentgatewayBackend:
        namespace = namespace_of(manifest)
        ai = manifest.body["spec"].get("ai")
        if ai is not None:
            return cls(manifest.name, namespace, (), manifest=manifest, ai=LlmProvider.from_spec(ai))
        mcp = manifest.body["spec"].get("mcp") or {}
        targets = []
        for item in mcp.get("targets") or []:
            static = item.get("static") or {}
            protocol = static.get("protocol", "StreamableHTTP")
            host = static.get("host") or service_host(
                (static.get("backendRef") or {}).get("name", ""), namespace
            )
            path = static.get("path") or _DEFAULT_MCP_PATH[protocol]
            targets.append(McpTarget(item["name"], host, int(static.get("port", 0)), path, protocol))
        return cls(manifest.name, namespace, tuple(targets), mcp.get("sessionRouting", "Stateful"), manifest)


@dataclass(frozen=True)
class TargetRef:
    group: str
    kind: str
    name: str
    section_name: str | None = None


@dataclass(frozen=True)
class ExtProc:
    """`traffic.extProc` with a Service `backendRef`: the external processor (the MCP guard).

    agentgateway calls it over gRPC ext_proc; the embedded waypoint over the guard's HTTP/JSON
    wire (`mesh/waypoint/guard_call.py`). `namespace` is the policy's unless the ref names one.
    """

    name: str
    namespace: str
    port: int

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], policy_namespace: str) -> ExtProc:
        ref = spec["backendRef"]
        return cls(ref["name"], ref.get("namespace", policy_namespace), int(ref["port"]))


@dataclass(frozen=True)
class AgentgatewayPolicy:
    name: str
    namespace: str
    target_refs: tuple[TargetRef, ...]
    traffic_authorization: Mapping[str, Any] | None = None
    rate_limits: tuple[LocalRateLimitSpec, ...] | None = None
    mcp_authorization: Mapping[str, Any] | None = None
    manifest: Manifest | None = field(default=None, repr=False, compare=False)
    ext_proc: ExtProc | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> AgentgatewayPolicy:
        spec = manifest.body["spec"]
        refs = tuple(
            TargetRef(r["group"], r["kind"], r["name"], r.get("sectionName"))
            for r in spec.get("targetRefs") or []
        )
        traffic = spec.get("traffic") or {}
        local = (traffic.get("rateLimit") or {}).get("local")
        limits = tuple(LocalRateLimitSpec.from_spec(item) for item in local) if local else None
        mcp = (spec.get("backend") or {}).get("mcp") or {}
        namespace = namespace_of(manifest)
        ext_proc = traffic.get("extProc")
        return cls(
            manifest.name,
            namespace,
            refs,
            traffic.get("authorization"),
            limits,
            mcp.get("authorization"),
            manifest,
            ExtProc.from_spec(ext_proc, namespace) if ext_proc and "backendRef" in ext_proc else None,
        )


@dataclass(frozen=True)
class LlmProvider:
    """`spec.ai.provider` of an AgentgatewayBackend, as far as the embedded waypoint serves it."""

    host: str
    port: int
    model: str | None = None  # `openai.model`: replaces the model the client asked for
    path: str | None = None
    path_prefix: str | None = None
    provider: str = PROVIDER_OPENAI

    @classmethod
    def from_spec(cls, ai: Mapping[str, Any]) -> LlmProvider:
        """From a validated `spec.ai` (validation refuses what this cannot serve)."""
        provider = ai["provider"]
        openai = provider.get("openai") or {}
        return cls(
            host=provider["host"],
            port=int(provider["port"]),
            model=openai.get("model"),
            path=provider.get("path"),
            path_prefix=provider.get("pathPrefix"),
        )

    def upstream_path(self, path: str) -> str:
        """The path sent to the provider for a chat completion that arrived at `path`."""
        if self.path:
            return self.path
        if self.path_prefix is not None:
            return self.path_prefix.rstrip("/") + COMPLETIONS_SUFFIX
        return path  # a host override without a prefix keeps the (rewritten) request path


@dataclass(frozen=True)
class LocalRateLimitSpec:
    """One `traffic.rateLimit.local[]` entry as written; `build` makes its (stateful) bucket."""

    requests: int
    unit: str
    burst: int | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> LocalRateLimitSpec:
        return cls(int(spec["requests"]), str(spec["unit"]), spec.get("burst"))
