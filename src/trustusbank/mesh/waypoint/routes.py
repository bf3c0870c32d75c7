"""The routing table one waypoint serves: its Gateway, the HTTPRoutes attached to it, their
backends, and the AgentgatewayPolicies that apply to each route rule.

Routing follows the Gateway API: a route attaches to a listener through a parentRef (the
Gateway, optionally one listener by `sectionName`/`port`, if the listener's `allowedRoutes`
admit the route's namespace; or a Service bound to this waypoint by `istio.io/use-waypoint`,
for traffic addressed to that Service). Among matching rules the more specific hostname wins,
then an Exact path, then the longest PathPrefix, then a method match, then more header
matches, then the route first by `<namespace>/<name>`, then rule order. PathPrefix matches
whole path segments.

What is sent upstream follows agentgateway: an MCP backend (`AgentgatewayBackend` with
`mcp.targets`) is not proxied path-for-path; agentgateway is the MCP server towards the client
and a client of the target, always at the target's `path` (default `/mcp`, `/sse` for SSE), so
the remainder of the request path is dropped. A Service backend gets the path after URLRewrite
(ReplacePrefixMatch / ReplaceFullPath), or the path unchanged. An AI backend (`spec.ai`) gets
its provider's path (`mesh/waypoint/llm.py`).

Policy attachment follows agentgateway's CRD documentation: a policy attaches to objects in
its own namespace only (targetRefs have no namespace). `traffic` attaches to the Gateway (all
routes), one listener (`sectionName`), a route, or one route rule (`sectionName` = rule
name); fields merge by specificity, Gateway < Listener < Route < Route rule, with `rateLimit`
taken whole from the most specific level, but `authorization` rules merged from every level
("all rules are merged"). `backend.mcp.authorization` attaches at the same levels and to the
AgentgatewayBackend itself, also merged. A rate limit's bucket belongs to the policy's
attachment: a Gateway-wide limit is one bucket shared by every route under it.

`traffic.extProc` (the MCP guard) is taken whole from the most specific level, as `rateLimit`.
Its Service `backendRef` resolves to the Service's cluster hostname, reached like any backend
(through the mesh, with the waypoint's identity); a Service not declared is not a configuration
error but a guard that cannot be reached, so every guarded request is refused (fail closed)
rather than the configuration being refused and an older one, without the guard, kept. The
embedded waypoint's guard call speaks MCP, so a processor on a rule whose backend is not MCP
is a configuration error, never skipped.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from trustusbank.errors import ConfigError
from trustusbank.manifests.core import WAYPOINT_LABEL
from trustusbank.manifests.gateway.objects import (
    WAYPOINT_NAMESPACE_LABEL,
    AgentgatewayBackend,
    AgentgatewayPolicy,
    BackendRef,
    ExtProc,
    Gateway,
    HeaderModifier,
    HTTPRoute,
    Listener,
    LlmProvider,
    ParentRef,
    RouteRule,
    RuleMatch,
    TargetRef,
    is_waypoint_class,
    service_host,
)
from trustusbank.manifests.gateway.schema import AGENTGATEWAY_GROUP, GATEWAY_GROUP
from trustusbank.manifests.manifest import Manifest, namespace_of
from trustusbank.mesh.authz.cel import HttpAuthorization, McpAuthorization
from trustusbank.mesh.waypoint.ratelimit import LocalRateLimits, RateLimitBuckets

# Attachment levels, least specific first (agentgateway: Gateway < Listener < Route < Route Rule);
# backend-level MCP policies merge with all of them, so they need no level.
_GATEWAY, _LISTENER, _ROUTE, _RULE = range(4)


# --- what the waypoint serves ---------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    kind: Literal["mcp", "service", "llm"]
    ref: str
    """`<namespace>/<name>` of the AgentgatewayBackend or Service."""
    host: str
    port: int
    path: str | None
    """The MCP target's path (e.g. `/mcp`); None for a Service."""
    target: str | None = None
    """The MCP target's name, what agentgateway calls `mcp.tool.target`."""
    protocol: str | None = None
    """`StreamableHTTP` or `SSE` for an MCP target."""
    llm: LlmProvider | None = None
    """The provider of an AI backend (kind `llm`)."""


@dataclass(frozen=True)
class Guard:
    """The external processor (MCP guard) a route's MCP traffic is judged by."""

    policy: str
    """`<namespace>/<name>` of the AgentgatewayPolicy whose `traffic.extProc` names it."""
    service: str
    """`<namespace>/<name>` of the Service."""
    host: str
    port: int


@dataclass(frozen=True)
class RouteMatch:
    route: str
    """`<namespace>/<name>` of the HTTPRoute."""
    rule: int
    backend: Backend
    upstream_path: str
    """The path to request upstream (query string not included)."""
    http_authorization: HttpAuthorization | None
    rate_limit: LocalRateLimits | None
    mcp_authorization: McpAuthorization | None
    header_modifier: HeaderModifier | None = None
    """RequestHeaderModifier of the rule, to apply to the upstream request."""
    listener: str = ""
    guard: Guard | None = None
    """The MCP guard to call for this MCP backend (`traffic.extProc`), if any."""


class WaypointConfigError(ConfigError, ValueError):
    """The manifests cannot be served as they are; every problem found, not just the first."""

    def __init__(self, gateway: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"waypoint {gateway}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class _Choice:
    weight: int
    backend: Backend
    mcp_authorization: McpAuthorization | None


@dataclass(frozen=True)
class _Entry:
    route: HTTPRoute
    rule: RouteRule
    match: RuleMatch
    order: tuple[Any, ...]
    service_hosts: frozenset[str] | None
    choices: tuple[_Choice, ...]
    http_authorization: HttpAuthorization | None
    rate_limit: LocalRateLimits | None
    listener: Listener
    guard: Guard | None = None

    def matches(self, path: str, method: str, host: str | None, headers: Mapping[str, str]) -> bool:
        if self.service_hosts is not None and host not in self.service_hosts:
            return False
        if host is not None and self.listener.hostname and not _host_matches(self.listener.hostname, host):
            return False
        if host is not None and self.route.hostnames and self.host_score(host) is None:
            return False
        return self.match.matches(path, method, headers)

    def host_score(self, host: str | None) -> tuple[int, int] | None:
        """Gateway API: most characters in a matching exact hostname, then in a matching hostname."""
        if host is None or not self.route.hostnames:
            return (0, 0)
        scores = [
            (len(name) if not name.startswith("*") else 0, len(name))
            for name in self.route.hostnames
            if _host_matches(name, host)
        ]
        return max(scores) if scores else None

    def route_match(self, path: str) -> RouteMatch:
        choice = self.choices[0] if len(self.choices) == 1 else _pick(self.choices)
        backend = choice.backend
        if backend.kind == "mcp":
            upstream = backend.path or "/mcp"
        elif self.rule.rewrite is not None:
            upstream = self.rule.rewrite.apply(path, self.match.path)
        else:
            upstream = path
        if backend.llm is not None:
            upstream = backend.llm.upstream_path(upstream)
        return RouteMatch(
            route=self.route.ref,
            rule=self.rule.index,
            backend=backend,
            upstream_path=upstream,
            http_authorization=self.http_authorization,
            rate_limit=self.rate_limit,
            mcp_authorization=choice.mcp_authorization,
            header_modifier=self.rule.header_modifier,
            listener=self.listener.name,
            guard=self.guard,
        )


def _pick(choices: Sequence[_Choice]) -> _Choice:
    return random.choices(choices, weights=[c.weight for c in choices])[0]


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _strip_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class WaypointConfig:
    """The routes, backends and policies of one agentgateway Gateway, ready to match requests."""

    def __init__(
        self, gateway: Gateway, entries: Mapping[str, Sequence[_Entry]], routes: Sequence[HTTPRoute]
    ) -> None:
        self.gateway = gateway
        self.gateway_class = gateway.gateway_class
        self.listeners: list[Listener] = list(gateway.listeners)
        self.routes = list(routes)
        """The HTTPRoutes attached to at least one listener."""
        self._entries = {name: list(items) for name, items in entries.items()}
        self._any_hostnames = any(
            e.route.hostnames or e.listener.hostname for es in entries.values() for e in es
        )

    @classmethod
    def from_manifests(
        cls,
        manifests: Iterable[Manifest],
        gateway_namespace: str,
        gateway_name: str,
        *,
        buckets: RateLimitBuckets | None = None,
    ) -> WaypointConfig:
        """Build the table; WaypointConfigError (a ValueError) lists everything that cannot be served.

        Pass the previous configuration's `buckets` on a reload, so that unchanged rate limits
        keep their state.
        """
        buckets = buckets or RateLimitBuckets()
        return _Builder(list(manifests), gateway_namespace, gateway_name, buckets).build()

    def match(
        self,
        path: str,
        method: str = "POST",
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        listener: str | None = None,
    ) -> RouteMatch | None:
        """The rule that serves this request, or None (404). `host` may carry a port.

        Without `listener`, listeners are tried in the Gateway's order. Without `host`,
        hostnames are not checked, and routes bound to a Service (which need the host to
        know the destination) do not match.
        """
        path = path.split("?", 1)[0] or "/"
        hostname = _strip_port(host) if host else None
        lowered = {k.lower(): v for k, v in headers.items()} if headers else {}
        names = [listener] if listener is not None else [item.name for item in self.listeners]
        for name in names:
            best: _Entry | None = None
            best_score: tuple[int, int] = (-1, -1)
            for entry in self._entries.get(name, ()):
                if not entry.matches(path, method, hostname, lowered):
                    continue
                if not self._any_hostnames:
                    return entry.route_match(path)
                score = entry.host_score(hostname) or (0, 0)
                if score > best_score:
                    best, best_score = entry, score
            if best is not None:
                return best.route_match(path)
        return None


class _Builder:
    def __init__(
        self, manifests: list[Manifest], namespace: str, name: str, buckets: RateLimitBuckets
    ) -> None:
        self.namespace, self.name, self.buckets = namespace, name, buckets
        self.problems: list[str] = []
        self.gateways = [Gateway.from_manifest(m) for m in manifests if m.kind == "Gateway"]
        self.routes = sorted(
            (HTTPRoute.from_manifest(m) for m in manifests if m.kind == "HTTPRoute"), key=lambda r: r.ref
        )
        self.backends = {
            (b.namespace, b.name): b
            for b in (
                AgentgatewayBackend.from_manifest(m) for m in manifests if m.kind == "AgentgatewayBackend"
            )
        }
        self.policies = sorted(
            (AgentgatewayPolicy.from_manifest(m) for m in manifests if m.kind == "AgentgatewayPolicy"),
            key=lambda p: p.ref,
        )
        self.namespace_labels = {m.name: m.labels for m in manifests if m.kind == "Namespace"}
        self.services = {(namespace_of(m), m.name): m for m in manifests if m.kind == "Service"}
        self._http: dict[str, HttpAuthorization] = {}
        self._mcp: dict[str, McpAuthorization] = {}
        self._limits: list[LocalRateLimits] = []

    def build(self) -> WaypointConfig:
        ref = f"{self.namespace}/{self.name}"
        gateway = next(
            (g for g in self.gateways if (g.namespace, g.name) == (self.namespace, self.name)), None
        )
        if gateway is None:
            raise WaypointConfigError(ref, ["no such Gateway in the manifests"])
        if not is_waypoint_class(gateway.gateway_class):
            raise WaypointConfigError(
                ref, [f"gatewayClassName {gateway.gateway_class!r} is not agentgateway's"]
            )
        self._compile_policies()
        entries: dict[str, list[_Entry]] = {listener.name: [] for listener in gateway.listeners}
        attached: list[HTTPRoute] = []
        for route in self.routes:
            bindings = self._bindings(gateway, route)
            if bindings:
                attached.append(route)
            for listener, hosts in bindings:
                entries[listener.name] += self._entries(gateway, listener, route, hosts)
        if self.problems:  # a route bound to several listeners reports its problems once
            raise WaypointConfigError(ref, list(dict.fromkeys(self.problems)))
        for items in entries.values():
            items.sort(key=lambda e: e.order)
        self.buckets.keep_only(self._limits)
        return WaypointConfig(gateway, entries, attached)

    def _compile_policies(self) -> None:
        for policy in self.policies:
            where = f"AgentgatewayPolicy {policy.ref}"
            try:
                if policy.traffic_authorization is not None:
                    self._http[policy.ref] = HttpAuthorization.from_spec(policy.traffic_authorization, where)
                if policy.mcp_authorization is not None:
                    self._mcp[policy.ref] = McpAuthorization.from_spec(policy.mcp_authorization, where)
            except ValueError as error:
                self.problems.append(str(error))

    def _bindings(self, gateway: Gateway, route: HTTPRoute) -> list[tuple[Listener, frozenset[str] | None]]:
        """The listeners `route` attaches to, with the Service hostnames it is limited to (if any)."""
        found: list[tuple[Listener, frozenset[str] | None]] = []
        labels = self.namespace_labels.get(route.namespace, {})
        for parent in route.parent_refs:
            if (parent.group, parent.kind) == (GATEWAY_GROUP, "Gateway"):
                if (parent.namespace, parent.name) != (gateway.namespace, gateway.name):
                    continue
                for listener in gateway.listeners:
                    if parent.section_name is not None and listener.name != parent.section_name:
                        continue
                    if parent.port is not None and listener.port != parent.port:
                        continue
                    if listener.admits(route.namespace, gateway.namespace, labels):
                        found.append((listener, None))
            elif (parent.group, parent.kind) == ("", "Service") and self._uses_waypoint(gateway, parent):
                hosts = _service_names(parent.name, parent.namespace)
                found += [(listener, hosts) for listener in gateway.listeners if listener.protocol == "HBONE"]
        unique: dict[str, tuple[Listener, frozenset[str] | None]] = {}
        for bound, limited in found:
            unique.setdefault(bound.name, (bound, limited))
        return list(unique.values())

    def _uses_waypoint(self, gateway: Gateway, parent: ParentRef) -> bool:
        service = self.services.get((parent.namespace, parent.name))
        if service is None:
            return False
        for labels in (service.labels, self.namespace_labels.get(parent.namespace, {})):
            if WAYPOINT_LABEL in labels:
                namespace = labels.get(WAYPOINT_NAMESPACE_LABEL, parent.namespace)
                return (labels[WAYPOINT_LABEL], namespace) == (gateway.name, gateway.namespace)
        return False

    def _entries(
        self, gateway: Gateway, listener: Listener, route: HTTPRoute, hosts: frozenset[str] | None
    ) -> list[_Entry]:
        entries = []
        for rule in route.rules:
            choices = tuple(self._choice(gateway, listener, route, rule, ref) for ref in rule.backend_refs)
            if any(choice is None for choice in choices):
                continue
            live = tuple(c for c in choices if c is not None and c.weight > 0)
            if not live:
                self.problems.append(
                    f"HTTPRoute {route.ref} rule {rule.index}: no backendRef with a weight above 0"
                )
                continue
            traffic = self._attached(gateway, listener, route, rule)
            authorizations = [self._http[p.ref] for p, _, _ in traffic if p.ref in self._http]
            http_authorization = HttpAuthorization.merge(authorizations) if authorizations else None
            rate_limit = self._rate_limit(traffic)
            guard = self._guard(traffic, route, rule, live)
            for index, match in enumerate(rule.matches):
                order = (*match.precedence, route.ref, rule.index, index)
                entries.append(
                    _Entry(
                        route,
                        rule,
                        match,
                        order,
                        hosts,
                        live,
                        http_authorization,
                        rate_limit,
                        listener,
                        guard,
                    )
                )
        return entries

    def _guard(
        self,
        attached: list[tuple[AgentgatewayPolicy, int, TargetRef]],
        route: HTTPRoute,
        rule: RouteRule,
        choices: Sequence[_Choice],
    ) -> Guard | None:
        """`traffic.extProc` of the most specific level; at one level, the first policy by namespace/name."""
        with_guard = [(p, level) for p, level, _ in attached if p.ext_proc is not None]
        if not with_guard:
            return None
        top = max(level for _, level in with_guard)
        policy = next(p for p, level in with_guard if level == top)
        ext_proc: ExtProc | None = policy.ext_proc
        assert ext_proc is not None
        where = (
            f"AgentgatewayPolicy {policy.ref} (traffic.extProc) on HTTPRoute {route.ref} rule {rule.index}"
        )
        if ext_proc.namespace != policy.namespace:
            self.problems.append(
                f"{where}: processor Service {ext_proc.ref} is in another namespace; that needs a "
                "ReferenceGrant, which the embedded waypoint does not support"
            )
            return None
        other = [c.backend.ref for c in choices if c.backend.kind != "mcp"]
        if other:
            self.problems.append(
                f"{where}: backend {other[0]} is not MCP; the embedded waypoint's processor call "
                "judges MCP JSON-RPC only, so it cannot guard this rule"
            )
            return None
        return Guard(policy.ref, ext_proc.ref, service_host(ext_proc.name, ext_proc.namespace), ext_proc.port)

    def _choice(
        self, gateway: Gateway, listener: Listener, route: HTTPRoute, rule: RouteRule, ref: BackendRef
    ) -> _Choice | None:
        where = f"HTTPRoute {route.ref} rule {rule.index}"
        if ref.namespace != route.namespace:
            self.problems.append(
                f"{where}: backendRef {ref.namespace}/{ref.name} is in another namespace; "
                "that needs a ReferenceGrant, which the embedded waypoint does not support"
            )
            return None
        if ref.kind == "Service":
            if (ref.namespace, ref.name) not in self.services:
                self.problems.append(f"{where}: backendRef Service {ref.namespace}/{ref.name} does not exist")
                return None
            backend = Backend(
                "service",
                f"{ref.namespace}/{ref.name}",
                service_host(ref.name, ref.namespace),
                ref.port or 80,
                None,
            )
            return _Choice(ref.weight, backend, None)
        found = self.backends.get((ref.namespace, ref.name))
        if found is None:
            self.problems.append(
                f"{where}: backendRef AgentgatewayBackend {ref.namespace}/{ref.name} does not exist"
            )
            return None
        if found.ai is not None:
            provider = found.ai
            backend = Backend("llm", found.ref, provider.host, provider.port, None, llm=provider)
            return _Choice(ref.weight, backend, None)
        if len(found.targets) != 1:
            self.problems.append(
                f"AgentgatewayBackend {found.ref}: the embedded waypoint serves exactly one MCP target"
            )
            return None
        target = found.targets[0]
        backend = Backend(
            "mcp", found.ref, target.host, target.port, target.path, target.name, target.protocol
        )
        policies = [p for p, _, _ in self._attached(gateway, listener, route, rule)]
        policies += [p for p in self.policies if self._targets(p, found)]
        parts = [self._mcp[p.ref] for p in policies if p.ref in self._mcp]
        mcp = McpAuthorization.merge(parts).for_target(target.name) if parts else None
        return _Choice(ref.weight, backend, mcp)

    def _targets(self, policy: AgentgatewayPolicy, backend: AgentgatewayBackend) -> bool:
        return policy.namespace == backend.namespace and any(
            (t.group, t.kind, t.name) == (AGENTGATEWAY_GROUP, "AgentgatewayBackend", backend.name)
            for t in policy.target_refs
        )

    def _attached(
        self, gateway: Gateway, listener: Listener, route: HTTPRoute, rule: RouteRule
    ) -> list[tuple[AgentgatewayPolicy, int, TargetRef]]:
        """Policies attached to this rule via the Gateway, listener, route or rule, least specific first."""
        found = []
        for policy in self.policies:
            for target in policy.target_refs:
                level = _level(policy, target, gateway, listener, route, rule)
                if level is not None:
                    found.append((policy, level, target))
        found.sort(key=lambda item: item[1])
        return found

    def _rate_limit(
        self, attached: list[tuple[AgentgatewayPolicy, int, TargetRef]]
    ) -> LocalRateLimits | None:
        """`rateLimit` of the most specific level; at one level, the first policy by namespace/name."""
        with_limits = [(p, level, t) for p, level, t in attached if p.rate_limits]
        if not with_limits:
            return None
        top = max(level for _, level, _ in with_limits)
        policy, _, target = next(item for item in with_limits if item[1] == top)
        assert policy.rate_limits is not None
        limits = self.buckets.get((policy.ref, target), policy.rate_limits)
        self._limits.append(limits)
        return limits


def _level(
    policy: AgentgatewayPolicy,
    target: TargetRef,
    gateway: Gateway,
    listener: Listener,
    route: HTTPRoute,
    rule: RouteRule,
) -> int | None:
    if target.group != GATEWAY_GROUP:
        return None
    if target.kind == "Gateway" and (policy.namespace, target.name) == (gateway.namespace, gateway.name):
        if target.section_name is None:
            return _GATEWAY
        return _LISTENER if target.section_name == listener.name else None
    if target.kind == "HTTPRoute" and (policy.namespace, target.name) == (route.namespace, route.name):
        if target.section_name is None:
            return _ROUTE
        return _RULE if target.section_name == rule.name else None
    return None


def _service_names(name: str, namespace: str) -> frozenset[str]:
    return frozenset({service_host(name, namespace), f"{name}.{namespace}.svc", f"{name}.{namespace}"})
