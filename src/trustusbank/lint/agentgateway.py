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
* Backend policies attached to an HTTPRoute or Gateway apply to the route's backends;
  only an `AgentgatewayBackend` with `spec.mcp` gives them an MCP context.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustusbank.lint.cel_refs import (
    Binary,
    Call,
    CelSyntaxError,
    Conditional,
    ListExpr,
    Literal,
    Node,
    Parsed,
    Reference,
    Unary,
    parse,
    references,
    split,
    static_path,
    unparse,
)
from trustusbank.lint.findings import Emitter, Finding, Severity
from trustusbank.manifests import Manifest

POLICY_KIND = "AgentgatewayPolicy"
BACKEND_KIND = "AgentgatewayBackend"
AGENTGATEWAY_GROUP = "agentgateway.dev"
GATEWAY_GROUP = "gateway.networking.k8s.io"

# --- the CEL attributes agentgateway defines (schema/cel.md) -----------------------------------

OPEN = "open"  # a map or `any`: every key below is acceptable
LEAF = "leaf"  # a scalar: nothing below it
Schema = Mapping[str, Any]

_WORKLOAD: Schema = {"name": LEAF, "namespace": LEAF, "serviceAccount": LEAF}
_RESOURCE: Schema = {"target": LEAF, "name": LEAF}
ATTRIBUTES: Schema = {
    "request": {
        **dict.fromkeys(
            ("method", "uri", "host", "scheme", "path", "pathAndQuery", "version", "body", "bodyPrefix"), LEAF
        ),
        **dict.fromkeys(("startTime", "endTime"), LEAF),
        "headers": OPEN,
    },
    "response": {**dict.fromkeys(("code", "grpcStatus", "body", "bodyPrefix"), LEAF), "headers": OPEN},
    "proxy": {
        "bind": LEAF,
        "gateway": {"namespace": LEAF, "name": LEAF},
        "listener": {"name": LEAF},
        "route": {"namespace": LEAF, "name": LEAF, "kind": LEAF, "rule": LEAF},
        **dict.fromkeys(
            ("requestProcessingDuration", "upstreamDuration", "responseProcessingDuration"), LEAF
        ),
    },
    "env": {"podName": LEAF, "namespace": LEAF, "gateway": LEAF},
    "source": {
        **dict.fromkeys(("address", "port", "rawAddress", "rawPort", "spiffeId", "issuer"), LEAF),
        **dict.fromkeys(("subject", "subjectCn", "certificate", "subjectAltNames"), LEAF),
        "identity": {"trustDomain": LEAF, "namespace": LEAF, "serviceAccount": LEAF},
        "unverifiedWorkload": _WORKLOAD,
        "connectHeaders": OPEN,
    },
    "destination": {"address": LEAF, "port": LEAF, "hostname": LEAF},
    "mcp": {
        "methodName": LEAF,
        "sessionId": LEAF,
        "tool": {"target": LEAF, "name": LEAF, "arguments": OPEN, "result": OPEN, "error": OPEN},
        "prompt": _RESOURCE,
        "resource": _RESOURCE,
        "task": _RESOURCE,
    },
    "backend": {"name": LEAF, "type": LEAF, "protocol": LEAF},
    **dict.fromkeys(("jwt", "apiKey", "basicAuth", "llm", "llmRequest"), OPEN),
    **dict.fromkeys(("extauthz", "extproc", "mcpGuardrails", "metadata"), OPEN),
}

# Mistakes seen in the wild (the write-up's among them), with the attribute that was meant.
SUGGESTIONS: Mapping[str, str] = {
    "mcp.method": "mcp.methodName",
    "mcp.method_name": "mcp.methodName",
    "mcp.methodname": "mcp.methodName",
    "mcp.tool_name": "mcp.tool.name",
    "mcp.toolName": "mcp.tool.name",
    "mcp.tool.args": "mcp.tool.arguments",
    "mcp.resource.uri": "mcp.resource.name",
    "source.identity.service_account": "source.identity.serviceAccount",
    "source.identity.serviceaccount": "source.identity.serviceAccount",
    "source.identity.sa": "source.identity.serviceAccount",
    "source.identity.trust_domain": "source.identity.trustDomain",
    "source.identity.ns": "source.identity.namespace",
    "source.serviceAccount": "source.identity.serviceAccount",
    "source.namespace": "source.identity.namespace",
    "source.principal": "source.spiffeId",
    "source.ip": "source.address",
}
# Set by agentgateway only after the request completes (access logs), never during authorization.
POST_REQUEST = ("mcp.methodName", "mcp.sessionId", "mcp.tool.arguments", "mcp.tool.result", "mcp.tool.error")
TOOL_ATTRIBUTES = ("mcp.tool",)  # name, target (and, as an author's intent, arguments)
CALLER_ROOTS = ("jwt", "apiKey", "basicAuth")
CALLER_SOURCE = (
    "identity",
    "spiffeId",
    "subject",
    "subjectCn",
    "subjectAltNames",
    "issuer",
    "certificate",
    "address",
    "rawAddress",
    "unverifiedWorkload",
)


@dataclass(frozen=True)
class Resolution:
    """What the schema says about a path: `known`, the node it ends on, and a suggestion."""

    known: bool
    node: Any = None
    suggestion: str | None = None
    missing: str = ""  # the first segment that is not defined


def resolve(path: Sequence[str]) -> Resolution:
    dotted = ".".join(path)
    node: Any = ATTRIBUTES
    for depth, segment in enumerate(path):
        if node == OPEN:
            return Resolution(True, OPEN)
        if node == LEAF or segment not in node:
            prefix = ".".join(path[: depth + 1])
            suggestion = next((SUGGESTIONS[p] for p in (dotted, prefix) if p in SUGGESTIONS), None)
            if suggestion is None and isinstance(node, Mapping):
                close = difflib.get_close_matches(segment, list(node), n=1, cutoff=0.6)
                parent = ".".join(path[:depth])
                suggestion = f"{parent}.{close[0]}" if close and parent else (close[0] if close else None)
            return Resolution(False, None, suggestion, prefix)
        node = node[segment]
    return Resolution(True, node)


def _starts(path: Sequence[str], dotted: str) -> bool:
    prefix = tuple(dotted.split("."))
    return tuple(path[: len(prefix)]) == prefix


# --- where a rule is evaluated ----------------------------------------------------------------

TRAFFIC = "traffic.authorization"
MCP_AUTHZ = "backend.mcp.authorization"


@dataclass(frozen=True)
class Problem:
    """Why one reference errors where the rule runs (the rule never matches through it)."""

    reference: Reference
    code: str
    message: str
    on_cluster: str


def reference_problems(parsed: Parsed, where: str) -> list[Problem]:
    problems = [problem for ref in parsed.references for problem in _reference_problems(ref, where)]
    if parsed.root is not None:
        problems += _object_misuse(parsed.root)
    return problems


def _never(ref: Reference) -> str:
    if ref.presence:
        return f"`has({ref.dotted})` is always false, so this conjunct never holds"
    return "evaluating it is an error, and a rule that errors does not match"


def _reference_problems(ref: Reference, where: str) -> list[Problem]:
    """Each reason `ref` errors where the rule runs: unknown, unseen there, or not yet set."""
    path = ref.path
    problems = []
    resolution = resolve(path)
    if not resolution.known:
        hint = f" (did you mean `{resolution.suggestion}`?)" if resolution.suggestion else ""
        if len(path) == 1 or resolution.missing == path[0]:
            message = f"`{path[0]}` is not a CEL variable agentgateway defines{hint}"
        else:
            message = f"`{ref.dotted}` does not exist: agentgateway defines no `{resolution.missing}`{hint}"
        problems.append(Problem(ref, "agw-unknown-attribute", message, f"no such key: {_never(ref)}"))
    if where == TRAFFIC and path[0] == "mcp":
        problems.append(
            Problem(
                ref,
                "agw-mcp-in-traffic",
                f"`{ref.dotted}` under traffic.authorization: traffic authorization is HTTP-level and "
                "sees no MCP",
                f"`mcp` is not set when the HTTP request is authorized: {_never(ref)}. MCP rules belong in "
                "backend.mcp.authorization on an MCP AgentgatewayBackend",
            )
        )
    elif not resolution.known:
        return problems
    if path[0] == "response":
        problems.append(
            Problem(
                ref,
                "agw-not-available",
                f"`{ref.dotted}` is not available during authorization (there is no response yet)",
                _never(ref),
            )
        )
    if where == MCP_AUTHZ and any(_starts(path, p) for p in POST_REQUEST):
        problems.append(
            Problem(
                ref,
                "agw-post-request-attribute",
                f"`{ref.dotted}` is not available during MCP authorization: agentgateway sets it only after "
                "the request completes, for access logs",
                f"{_never(ref)}; authorize on `mcp.tool.name`, `mcp.tool.target` and the caller's identity",
            )
        )
    return problems


_COMPARISONS = ("==", "!=", "in", "<", "<=", ">", ">=")


def _object_misuse(root: Node) -> list[Problem]:
    """`mcp.tool == "x"`: an object compared like a string never equals it."""
    problems: list[Problem] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Binary) and node.op in _COMPARISONS:
            operands = (node.left,) if node.op == "in" else (node.left, node.right)
            for operand in operands:
                found = static_path(operand)
                if found is None:
                    continue
                ident, segments = found
                path = (ident.name, *segments)
                resolution = resolve(path)
                if resolution.known and isinstance(resolution.node, Mapping) and path[0] != "llm":
                    ref = Reference(path, ident.pos)
                    fields = ", ".join(f"`{'.'.join(path)}.{k}`" for k in resolution.node)
                    problems.append(
                        Problem(
                            ref,
                            "agw-object-compared",
                            f"`{ref.dotted}` is an object, not a string: compare one of its fields "
                            f"({fields})",
                            "an object never equals a string: this comparison is never true",
                        )
                    )
        if isinstance(node, Binary | Unary | Conditional | ListExpr):
            stack.extend(_sub(node))
    return problems


def _sub(node: Node) -> list[Node]:
    match node:
        case Binary(left=left, right=right):
            return [left, right]
        case Unary(operand=operand):
            return [operand]
        case Conditional(condition=c, then=t, otherwise=o):
            return [c, t, o]
        case ListExpr(items=items):
            return list(items)
    return []


# --- can a rule ever be true? (three outcomes: true, false, error) ---------------------------

T, F, E = "true", "false", "error"
Outcomes = frozenset[str]
ANY: Outcomes = frozenset({T, F})


def outcomes(node: Node, erroring: set[int]) -> Outcomes:
    """What `node` can evaluate to, given the positions of references that error.

    CEL's logic absorbs errors: `error || true` is true and `error && false` is false.
    """
    if isinstance(node, Literal) and isinstance(node.value, bool):
        return frozenset({T if node.value else F})
    if isinstance(node, Binary) and node.op in ("||", "&&"):
        left, right = outcomes(node.left, erroring), outcomes(node.right, erroring)
        combine = _or if node.op == "||" else _and
        return frozenset(combine(a, b) for a in left for b in right)
    if isinstance(node, Unary) and node.op == "!":
        flip = {T: F, F: T, E: E}
        return frozenset(flip[o] for o in outcomes(node.operand, erroring))
    if isinstance(node, Conditional):
        condition = outcomes(node.condition, erroring)
        result: set[str] = set()
        if T in condition:
            result |= outcomes(node.then, erroring)
        if F in condition:
            result |= outcomes(node.otherwise, erroring)
        if E in condition:
            result.add(E)
        return frozenset(result)
    refs = references(node)
    if _is_has(node):
        return frozenset({F}) if any(r.pos in erroring for r in refs) else ANY
    if any(r.pos in erroring and not r.presence for r in refs):
        return frozenset({E})
    return ANY


def _is_has(node: Node) -> bool:
    return isinstance(node, Call) and node.function == "has" and node.target is None


def _or(a: str, b: str) -> str:
    if T in (a, b):
        return T
    return F if a == b == F else E


def _and(a: str, b: str) -> str:
    if F in (a, b):
        return F
    return T if a == b == T else E


# --- what a rule allows, as its author means it (for OR'd Allow lists) -----------------------


@dataclass(frozen=True)
class Scope:
    """One way a rule can match a tool call: what it says about the tool and the caller."""

    tool: bool
    caller: bool
    conjuncts: tuple[Node, ...]


def tool_call_scopes(root: Node) -> list[Scope]:
    """The disjuncts of `root` that can hold for a `tools/call`, read as the author meant them.

    Misspelt attributes are read as their suggestion (`mcp.method` as `mcp.methodName`) and
    `mcp.methodName` as the method of the call, so `mcp.methodName == "tools/call"` holds.
    """
    scopes = []
    for disjunct in split(root, "||"):
        conjuncts = split(disjunct, "&&")
        if any(_tool_call_outcome(c) == F for c in conjuncts):
            continue
        paths = [_intended(r.path) for c in conjuncts for r in references(c)]
        if any(not resolve(p).known or p[0] == "response" for p in paths):
            continue  # an attribute that errors even as meant: this disjunct never holds
        tool = any(_is_tool(p) for p in paths)
        caller = any(_is_caller(p) for p in paths)
        scopes.append(Scope(tool, caller, tuple(conjuncts)))
    return scopes


def _intended(path: tuple[str, ...]) -> tuple[str, ...]:
    dotted = ".".join(path)
    for wrong, right in SUGGESTIONS.items():
        if dotted == wrong or dotted.startswith(wrong + "."):
            return tuple((right + dotted[len(wrong) :]).split("."))
    return path


def _is_tool(path: tuple[str, ...]) -> bool:
    return any(_starts(path, a) for a in TOOL_ATTRIBUTES)


def _is_caller(path: tuple[str, ...]) -> bool:
    return path[0] in CALLER_ROOTS or (path[0] == "source" and len(path) > 1 and path[1] in CALLER_SOURCE)


def _tool_call_outcome(node: Node) -> str | None:
    """T or F for a conjunct that only tests the MCP method or is a boolean literal; else None."""
    if isinstance(node, Literal) and isinstance(node.value, bool):
        return T if node.value else F
    if isinstance(node, Unary) and node.op == "!":
        inner = _tool_call_outcome(node.operand)
        return None if inner is None else (F if inner == T else T)
    if not isinstance(node, Binary) or node.op not in ("==", "!=", "in"):
        return None
    method, other = _is_method(node.left), node.right
    if not method and node.op != "in":
        method, other = _is_method(node.right), node.left
    if not method:
        refs = [_intended(r.path) for r in references(node)]
        # A prompt or resource attribute is absent on a tool call: that conjunct errors.
        if refs and all(_starts(p, "mcp.prompt") or _starts(p, "mcp.resource") for p in refs):
            return F
        return None
    if node.op == "in" and isinstance(other, ListExpr):
        values = {i.value for i in other.items if isinstance(i, Literal)}
        return T if "tools/call" in values else F
    if isinstance(other, Literal) and isinstance(other.value, str):
        equal = other.value == "tools/call"
        return T if equal == (node.op == "==") else F
    return None


def _is_method(node: Node) -> bool:
    """Whether `node` reads the MCP method (as `mcp.methodName`, or misspelt as `mcp.method`)."""
    found = static_path(node)
    return found is not None and _intended((found[0].name, *found[1])) == ("mcp", "methodName")


def describe(conjuncts: Sequence[Node], which: str) -> str:
    """The conjuncts about the tool (`which="tool"`) or the caller, as CEL text."""
    test = _is_tool if which == "tool" else _is_caller
    chosen = [unparse(c) for c in conjuncts if any(test(_intended(r.path)) for r in references(c))]
    return " && ".join(chosen)


# --- the checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objects:
    """The other objects in the input that a policy's meaning depends on."""

    backends: Sequence[Manifest] = ()
    routes: Sequence[Manifest] = ()
    gateways: Sequence[Manifest] = ()

    def backend(self, namespace: str, name: str) -> Manifest | None:
        return next((b for b in self.backends if (_ns(b), b.name) == (namespace, name)), None)

    def route(self, namespace: str, name: str) -> Manifest | None:
        return next((r for r in self.routes if (_ns(r), r.name) == (namespace, name)), None)

    def gateway(self, namespace: str, name: str) -> Manifest | None:
        return next((g for g in self.gateways if (_ns(g), g.name) == (namespace, name)), None)


def _ns(manifest: Manifest) -> str:
    return manifest.namespace or "default"


def _get(body: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(body, Mapping):
            return None
        body = body.get(key)
    return body


def check_policy(policy: Manifest, objects: Objects) -> list[Finding]:
    """Every finding for one AgentgatewayPolicy."""
    emit = Emitter(policy)
    spec = policy.body.get("spec")
    if not isinstance(spec, Mapping):
        return []
    findings = list(_target_findings(policy, spec, objects, emit))
    traffic = _get(spec, "traffic", "authorization")
    if isinstance(traffic, Mapping):
        findings += _authorization(("spec", "traffic", "authorization"), traffic, TRAFFIC, emit)
    mcp = _get(spec, "backend", "mcp", "authorization")
    if isinstance(mcp, Mapping):
        findings += _authorization(("spec", "backend", "mcp", "authorization"), mcp, MCP_AUTHZ, emit)
    return findings


def _authorization(
    base: tuple[str, ...], authorization: Mapping[str, Any], where: str, emit: Emitter
) -> list[Finding]:
    action = str(authorization.get("action") or "Allow")
    expressions = _get(authorization, "policy", "matchExpressions")
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
    problems = reference_problems(parsed, where)
    for problem in problems:
        findings.append(emit(path, Severity.ERROR, problem.code, problem.message, problem.on_cluster, index))
    erroring = {p.reference.pos for p in problems}
    can_match = parsed.root is None or T in outcomes(parsed.root, erroring)
    if parsed.root is not None and mcp_allowlist:
        findings += _admits(path, index, parsed.root, where, can_match, emit)
    return findings, can_match


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
    namespace = _ns(policy)
    has_traffic = isinstance(spec.get("traffic"), Mapping)
    has_mcp = isinstance(_get(spec, "backend", "mcp"), Mapping)
    mcp_authz = isinstance(_get(spec, "backend", "mcp", "authorization"), Mapping)
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
    if not pool or any((_ns(m), m.name) == (namespace, name) for m in pool):
        return None
    return f"targets {kind} {namespace}/{name}, which is not in the input"


def _is_mcp_backend(backend: Manifest | None) -> bool:
    return backend is not None and isinstance(_get(backend.body, "spec", "mcp"), Mapping)


def _route_backends(route: Manifest) -> list[tuple[str, str, str]]:
    """(group, kind, name) of each backendRef of the route, in the route's namespace."""
    found = []
    for rule in _get(route.body, "spec", "rules") or []:
        for ref in _get(rule, "backendRefs") or []:
            if isinstance(ref, Mapping):
                kind = str(ref.get("kind") or "Service")
                found.append((str(ref.get("group") or ""), kind, str(ref.get("name") or "")))
    return found


def _route_has_mcp(route: Manifest, objects: Objects) -> bool:
    return any(
        group == AGENTGATEWAY_GROUP
        and kind == BACKEND_KIND
        and _is_mcp_backend(objects.backend(_ns(route), name))
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
    for parent in _get(route.body, "spec", "parentRefs") or []:
        same = isinstance(parent, Mapping) and parent.get("name") == name
        if same and str(parent.get("namespace") or _ns(route)) == namespace:
            return True
    return False
