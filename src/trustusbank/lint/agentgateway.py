"""AgentgatewayPolicy checks: which CEL rules can match, where, and what they then allow.

Facts from agentgateway's sources (`crates/agentgateway/src/cel/types.rs`, `mcp/rbac.rs`,
`http/authorization.rs`, `schema/cel.md`, the controller's `rbac.go` and
`backend_policies.go`) that these checks rest on:

* `matchExpressions` are separate rules. `Allow`: any matching rule allows, and once an
  Allow rule exists, a request no rule matches is denied. `Deny`: any matching rule
  denies. `Require`: every rule must match. A rule that errors does not match, and a
  rule that does not compile is replaced by one that always fails.
* `traffic.authorization` runs on the HTTP request; no `mcp` variable is set there.
* `backend.mcp.authorization` runs per tool, prompt or resource (and filters list
  results); at that point `mcp` holds only `tool|prompt|resource|task.{name,target}`.
  `mcp.methodName`, `mcp.sessionId` and `mcp.tool.arguments|result|error` are filled in
  after the request, for access logs: reading them during authorization is an error.
* Functions are agentgateway's (`crates/celx/src/lib.rs`): a rule calling one the
  embedded waypoint does not implement (or none agentgateway defines) is an error here, and
  the waypoint refuses it at load.
* Backend policies attached to an HTTPRoute or Gateway apply to the route's backends;
  only an `AgentgatewayBackend` with `spec.mcp` gives them an MCP context.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustusbank.lint.cel_refs import (
    CelSyntaxError,
    Node,
    Parsed,
    parse,
)
from trustusbank.lint.cel_rules import T, describe, outcomes, reference_problems, tool_call_scopes
from trustusbank.lint.findings import Emitter, Finding, Severity
from trustusbank.manifests.manifest import Manifest, field_at, namespace_of
from trustusbank.mesh.authz.cel import compile_expression
from trustusbank.mesh.authz.cel_attributes import MCP_AUTHZ, TRAFFIC

POLICY_KIND = "AgentgatewayPolicy"
BACKEND_KIND = "AgentgatewayBackend"
AGENTGATEWAY_GROUP = "agentgateway.dev"
GATEWAY_GROUP = "gateway.networking.k8s.io"

# --- the checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objects:
    """The other objects in the input that a policy's meaning depends on."""

    backends: Sequence[Manifest] = ()
    routes: Sequence[Manifest] = ()
    gateways: Sequence[Manifest] = ()

    def backend(self, namespace: str, name: str) -> Manifest | None:
        return next((b for b in self.backends if (namespace_of(b), b.name) == (namespace, name)), None)

    def route(self, namespace: str, name: str) -> Manifest | None:
        return next((r for r in self.routes if (namespace_of(r), r.name) == (namespace, name)), None)

    def gateway(self, namespace: str, name: str) -> Manifest | None:
        return next((g for g in self.gateways if (namespace_of(g), g.name) == (namespace, name)), None)


def check_policy(policy: Manifest, objects: Objects) -> list[Finding]:
    """Every finding for one AgentgatewayPolicy."""
    emit = Emitter(policy)
    spec = policy.body.get("spec")
    if not isinstance(spec, Mapping):
        return []
    findings = list(_target_findings(policy, spec, objects, emit))
    traffic = field_at(spec, "traffic", "authorization")
    if isinstance(traffic, Mapping):
        findings += _authorization(("spec", "traffic", "authorization"), traffic, TRAFFIC, emit)
    mcp = field_at(spec, "backend", "mcp", "authorization")
    if isinstance(mcp, Mapping):
        findings += _authorization(("spec", "backend", "mcp", "authorization"), mcp, MCP_AUTHZ, emit)
    if isinstance(field_at(spec, "traffic", "extProc"), Mapping):
        findings.append(_ext_proc_wire(emit))
    return findings


def _ext_proc_wire(emit: Emitter) -> Finding:
    """The embedded waypoint calls its processor over the guard's HTTP/JSON wire; agentgateway does not."""
    message = (
        "traffic.extProc: on a real cluster agentgateway calls the processor over gRPC "
        "(Envoy ext_proc, envoy.service.ext_proc.v3.ExternalProcessor), and trustusbank's mcp-guard "
        "does not speak it yet: it speaks the HTTP/JSON wire the embedded waypoint calls"
    )
    on_cluster = (
        "agentgateway's ext_proc stream to the guard fails, so with failureMode FailClosed (the "
        "default) every request on the policy's targets is refused"
    )
    return emit(("spec", "traffic", "extProc"), Severity.WARNING, "agw-extproc-grpc", message, on_cluster)


def _authorization(
    base: tuple[str, ...], authorization: Mapping[str, Any], where: str, emit: Emitter
) -> list[Finding]:
    action = str(authorization.get("action") or "Allow")
    expressions = field_at(authorization, "policy", "matchExpressions")
    if not isinstance(expressions, list):
        return []
    parsed: list[Parsed | CelSyntaxError] = []
    for expression in expressions:
        try:
            parsed.append(parse(str(expression)))
        except CelSyntaxError as error:
            parsed.append(error)
    # An allowlist is about MCP when it runs on MCP, or when its author meant it to (reads `mcp.*`).
    about_mcp = where == MCP_AUTHZ or any(
        isinstance(p, Parsed) and any(r.path[0] == "mcp" for r in p.references) for p in parsed
    )
    findings: list[Finding] = []
    never: list[int] = []
    for index, result in enumerate(parsed):
        path: tuple[str | int, ...] = (*base, "policy", "matchExpressions", index)
        rule_findings, can_match = _rule(path, index, result, where, action == "Allow" and about_mcp, emit)
        findings += rule_findings
        if not can_match:
            never.append(index)
    if never and len(never) == len(expressions):
        findings.append(_all_never(base, where, action, never, emit))
    return findings


def _rule(
    path: tuple[str | int, ...],
    index: int,
    parsed: Parsed | CelSyntaxError,
    where: str,
    mcp_allowlist: bool,
    emit: Emitter,
) -> tuple[list[Finding], bool]:
    if isinstance(parsed, CelSyntaxError):
        on_cluster = (
            "the controller marks the policy PartiallyValid ('matchExpression is not a valid CEL "
            "expression') and agentgateway replaces the rule with one that always fails: it never matches"
        )
        message = f"CEL does not parse: {parsed.message}"
        return [emit(path, Severity.ERROR, "agw-cel-syntax", message, on_cluster, index)], False
    findings: list[Finding] = []
    refused = _refused(parsed.source)
    if refused is not None:
        on_cluster = (
            "the embedded waypoint refuses the policy when it loads and keeps its last good "
            "configuration; an agentgateway without the function would error on every request"
        )
        findings.append(emit(path, Severity.ERROR, "agw-unsupported-function", refused, on_cluster, index))
    problems = reference_problems(parsed, where)
    for problem in problems:
        findings.append(emit(path, Severity.ERROR, problem.code, problem.message, problem.on_cluster, index))
    erroring = {p.reference.pos for p in problems}
    can_match = parsed.root is None or T in outcomes(parsed.root, erroring)
    if parsed.root is not None and mcp_allowlist:
        findings += _admits(path, index, parsed.root, where, can_match, emit)
    return findings, can_match


def _refused(expression: str) -> str | None:
    """Why the waypoint refuses to load `expression` (a function it does not run), or None."""
    try:
        compile_expression(expression)
    except ValueError as error:
        verb, detail = error.args
        return f"the rule {verb}: {detail}"
    return None


def _admits(
    path: tuple[str | int, ...], index: int, root: Node, where: str, can_match: bool, emit: Emitter
) -> Iterator[Finding]:
    """Rules are OR'd: a rule that holds for any tool call decides for every tool on its own."""
    scopes = tool_call_scopes(root)
    caveat = "" if can_match else " (as its author means it; today it never matches, see above)"
    loose = next((s for s in scopes if not s.tool and not s.caller), None)
    if loose is not None:
        yield emit(
            path,
            Severity.ERROR,
            "agw-allows-everything",
            f"rules are OR'd: this rule allows every tool to every caller{caveat}; it names neither "
            "a tool (`mcp.tool.name`) nor a caller (`source.identity.*`, `jwt.*`)",
            "any request it matches is allowed whatever the other rules say, so the tool allowlist "
            "restricts nothing" + ("" if where == MCP_AUTHZ else " once the rules run where MCP is seen"),
            index,
        )
        return
    for scope in scopes:
        if scope.caller and not scope.tool:
            caller = describe(scope.conjuncts, "caller")
            yield emit(
                path,
                Severity.WARNING,
                "agw-allows-every-tool",
                f"rules are OR'd: this rule allows every tool to the caller it names ({caller}){caveat}",
                "that caller may call any tool this backend has now or adds later",
                index,
            )
            return
    for scope in scopes:
        if scope.tool and not scope.caller:
            tool = describe(scope.conjuncts, "tool")
            yield emit(
                path,
                Severity.INFO,
                "agw-allows-every-caller",
                f"this rule allows {tool} to every caller{caveat}",
                "any workload that reaches this backend may call it; only network policy limits who",
                index,
            )
            return


def _all_never(base: tuple[str, ...], where: str, action: str, never: list[int], emit: Emitter) -> Finding:
    which = ", ".join(str(i) for i in never)
    if action == "Allow":
        effect = (
            "every request on its targets is denied (HTTP 403)"
            if where == TRAFFIC
            else "every tool, prompt and resource is denied, and tools/list comes back empty"
        )
        message = f"no rule of this Allow list can ever match (rules {which}): it denies everything"
    elif action == "Require":
        effect = "every request is denied: a Require rule that never matches fails them all"
        message = f"no Require rule can ever match (rules {which})"
    else:
        effect = "nothing is denied: a rule that errors does not deny"
        message = f"no Deny rule can ever match (rules {which}): it denies nothing"
    return emit((*base, "policy", "matchExpressions"), Severity.ERROR, "agw-never-matches", message, effect)


# --- targets: where the rules run, and whether there is MCP there -----------------------------

_TRAFFIC_KINDS = ("Gateway", "HTTPRoute", "GRPCRoute", "ListenerSet", "InferencePool")
NO_MCP = "no MCP context: backend.mcp.authorization applies to AgentgatewayBackends with mcp targets"


def _target_findings(
    policy: Manifest, spec: Mapping[str, Any], objects: Objects, emit: Emitter
) -> Iterator[Finding]:
    refs = spec.get("targetRefs")
    if not isinstance(refs, list):
        return
    namespace = namespace_of(policy)
    has_traffic = isinstance(spec.get("traffic"), Mapping)
    has_mcp = isinstance(field_at(spec, "backend", "mcp"), Mapping)
    mcp_authz = isinstance(field_at(spec, "backend", "mcp", "authorization"), Mapping)
    for index, ref in enumerate(refs):
        if not isinstance(ref, Mapping):
            continue
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        path = ("spec", "targetRefs", index)
        if has_traffic and kind not in _TRAFFIC_KINDS:
            yield emit(
                path,
                Severity.ERROR,
                "agw-traffic-target",
                f"`traffic` cannot target a {kind}: only Gateway, ListenerSet, GRPCRoute, HTTPRoute or "
                "InferencePool",
                "the API server refuses the policy (CRD validation)",
            )
        if has_mcp and kind == "Service":
            yield emit(
                path,
                Severity.ERROR,
                "agw-mcp-service-target",
                "backend.mcp may not be used with a Service target",
                "the API server refuses the policy (CRD validation)",
            )
            continue
        missing = _missing_target(kind, namespace, name, objects)
        if missing is not None:
            yield emit(
                path, Severity.WARNING, "agw-target-missing", missing, "the policy attaches to nothing"
            )
            continue
        if mcp_authz:
            reason = _no_mcp_reason(kind, namespace, name, objects)
            if reason is not None:
                yield emit(
                    path,
                    Severity.ERROR,
                    "agw-no-mcp-context",
                    f"{NO_MCP}; {reason}",
                    "the waypoint never parses MCP for this target, so these rules are never evaluated",
                )


def _missing_target(kind: str, namespace: str, name: str, objects: Objects) -> str | None:
    """A target absent from an input that has objects of its kind (else we cannot tell)."""
    pools = {BACKEND_KIND: objects.backends, "HTTPRoute": objects.routes, "Gateway": objects.gateways}
    pool = pools.get(kind)
    if not pool or any((namespace_of(m), m.name) == (namespace, name) for m in pool):
        return None
    return f"targets {kind} {namespace}/{name}, which is not in the input"


def _is_mcp_backend(backend: Manifest | None) -> bool:
    return backend is not None and isinstance(field_at(backend.body, "spec", "mcp"), Mapping)


def _route_backends(route: Manifest) -> list[tuple[str, str, str]]:
    """(group, kind, name) of each backendRef of the route, in the route's namespace."""
    found = []
    for rule in field_at(route.body, "spec", "rules") or []:
        for ref in field_at(rule, "backendRefs") or []:
            if isinstance(ref, Mapping):
                kind = str(ref.get("kind") or "Service")
                found.append((str(ref.get("group") or ""), kind, str(ref.get("name") or "")))
    return found


def _route_has_mcp(route: Manifest, objects: Objects) -> bool:
    return any(
        group == AGENTGATEWAY_GROUP
        and kind == BACKEND_KIND
        and _is_mcp_backend(objects.backend(namespace_of(route), name))
        for group, kind, name in _route_backends(route)
    )


def _no_mcp_reason(kind: str, namespace: str, name: str, objects: Objects) -> str | None:
    if kind == BACKEND_KIND:
        backend = objects.backend(namespace, name)
        if backend is not None and not _is_mcp_backend(backend):
            return f"AgentgatewayBackend {namespace}/{name} has no spec.mcp"
        return None
    if kind == "HTTPRoute":
        route = objects.route(namespace, name)
        if route is None or _route_has_mcp(route, objects):
            return None
        backends = ", ".join(f"{k} {n}" for _, k, n in _route_backends(route)) or "none"
        return f"HTTPRoute {namespace}/{name} routes to no MCP backend (its backends: {backends})"
    if kind == "Gateway":
        if objects.gateway(namespace, name) is None or not objects.routes:
            return None
        attached = [r for r in objects.routes if _parents(r, namespace, name)]
        if any(_route_has_mcp(r, objects) for r in attached):
            return None
        return f"no HTTPRoute on Gateway {namespace}/{name} routes to an MCP backend"
    return None


def _parents(route: Manifest, namespace: str, name: str) -> bool:
    for parent in field_at(route.body, "spec", "parentRefs") or []:
        same = isinstance(parent, Mapping) and parent.get("name") == name
        if same and str(parent.get("namespace") or namespace_of(route)) == namespace:
            return True
    return False
