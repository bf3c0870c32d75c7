"""agentgateway's CEL authorization: `traffic.authorization` and `backend.mcp.authorization`.

Semantics, from agentgateway `crates/agentgateway/src/http/authorization.rs` (`RuleSets::validate`)
and the controller's translation of `matchExpressions` (each expression is one rule of the
policy's action):

- no rules at all: allowed;
- any `Deny` rule that matches: denied;
- any `Require` rule that does not match: denied;
- any `Allow` rule that matches: allowed (rules are OR'd, within and across policies);
- otherwise denied if there is any `Allow` rule (allowlist), allowed if not (denylist).

A rule "matches" only if it evaluates to `true`: an evaluation error (a missing attribute, a
type error) or a non-bool result is no match (`Executor::eval_bool`). So an erroring `Allow`
rule cannot allow, and an erroring `Deny` rule cannot deny; agentgateway warns against `Deny`
for exactly that reason. Several policies that attach to the same request are merged, not
overridden: their rules are evaluated together with the rules above.

Attributes, as agentgateway names them (`schema/cel.md`):
`source.identity.{trustDomain,namespace,serviceAccount}` (from the verified peer certificate;
absent without one), `source.address`, `request.{method,path,host,headers}` (header names
case-insensitive), `jwt` (only with a JWT policy, which the embedded waypoint has not: it is
`null`, as are `apiKey`, `basicAuth`, `llm`, `extauthz` and the others agentgateway leaves
unset; see `cel_attributes.UNSET_ROOTS`), and for MCP authorization
`mcp.tool.{target,name}`, `mcp.prompt.{target,name}`, `mcp.resource.{target,name}` (`name` is
the resource URI). Nothing else: agentgateway evaluates MCP authorization on the "identity
subset" of the MCP request (`MCPInfo::from(&ResourceType)` in `mcp/rbac.rs`). `mcp.methodName`,
`mcp.sessionId` and `mcp.tool.arguments` exist only in post-request CEL (access logs), so a rule
that reads them never matches. There is no `mcp.method`, and `traffic.authorization` sees no
`mcp` at all.

agentgateway's functions (strings and math extensions, `default`, `coalesce`, `cidr`, `ip`,
`json`, ...) are those of `cel_functions.py`; a rule calling any other is refused when it loads.

Building the activation is what costs (each Python value is converted for the CEL runtime):
only the variables the rules reference are built, each caller keeps its own activation (an
LRU of them), and a variable whose inputs did not change since that caller's previous decision
is not rebuilt. A decision is remembered (an LRU per authorization) under a key holding every
input the rules can read (`cel_reads`): the caller's identity and address, the request fields,
the MCP item, as far as the rules read them. Not remembered: decisions whose evaluation met an
error (they are recomputed, and fail closed, every time), and nothing at all when a rule calls
`random()` or `uuid()`. A policy reload compiles new authorizations, whose caches start empty:
the generation is the object. Decisions are synchronous, so the caches need no lock under asyncio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

import cel

from trustusbank.mesh.authz.cel_attributes import (
    ATTRIBUTES,
    EMBEDDED_ROOTS_AT,
    MCP_AUTHZ,
    TRAFFIC,
    UNSET_ROOTS,
)
from trustusbank.mesh.authz.cel_cache import CacheStats, Lru
from trustusbank.mesh.authz.cel_functions import (
    VOLATILE,
    compile_fragment,
    misqualified,
    register,
    rewrite,
    unsupported,
    why_unsupported,
)
from trustusbank.mesh.authz.cel_reads import fields_read, headers_read

log = logging.getLogger(__name__)

JUDGED_METHODS = frozenset(
    {
        "tools/call",
        "prompts/get",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "subscriptions/listen",
        "completion/complete",
        "tasks/get",
        "tasks/update",
        "tasks/cancel",
    }
)
"""MCP requests agentgateway authorizes one item of (agentgateway `mcp/session.rs`)."""

FILTERED_METHODS = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})
"""MCP requests whose answer agentgateway filters item by item instead (`mcp/handler.rs` merge_*)."""

DECISION_CACHE_SIZE = 1024
"""Decisions remembered per authorization; 0 turns remembering off (the benchmark's switch).

Ten callers by a hundred tools fit. A rule reading `request.headers` other than by a literal
name keys on all of a request's headers, so per-request headers (`traceparent`) make every
decision a miss: the bound is what keeps those entries from growing without end."""

ACTIVATIONS = 256
"""Callers whose activation stays built, per authorization (one costs tens of microseconds)."""


class Action(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    REQUIRE = "Require"


@dataclass(frozen=True)
class Identity:
    """The caller, from its verified SPIFFE certificate."""

    trust_domain: str
    namespace: str
    service_account: str


@dataclass(frozen=True)
class RequestInfo:
    method: str
    path: str
    host: str
    headers: Mapping[str, str]
    source_address: str | None = None


@dataclass(frozen=True)
class McpInfo:
    """One MCP request, as parsed from the body the server will execute.

    Only the tool, prompt or resource (and its target) reach the rules; `method_name` and
    `tool_arguments` are carried for logging, as in agentgateway.
    """

    method_name: str
    tool_name: str | None = None
    tool_target: str | None = None
    tool_arguments: Mapping[str, Any] | None = None
    prompt_name: str | None = None
    resource_uri: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class CelDecision:
    allowed: bool
    rule: int | None
    """Index of the deciding rule among all rules of the merged policies, in order."""
    reason: str
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    action: Action
    expression: str
    where: str
    """`<policy> rule <i>`: the policy as the logs name it, and the index in its matchExpressions."""
    program: cel.Program = field(repr=False, compare=False)
    variables: frozenset[str] = field(repr=False, compare=False)
    volatile: bool = field(default=False, repr=False, compare=False)
    """It calls `random()` or `uuid()`: the same inputs need not give the same decision."""


def compile_rules(spec: Mapping[str, Any], where: str) -> tuple[Rule, ...]:
    """The rules of one `authorization` block; ValueError naming policy and rule if one does not load.

    A rule loads if it compiles and calls only functions the waypoint implements: agentgateway
    would run the others, and a rule that cannot run must not load (a `Deny` rule would
    otherwise fail open on "no match").
    """
    action = Action(spec.get("action") or Action.ALLOW)
    expressions = list((spec.get("policy") or {}).get("matchExpressions") or [])
    rules = []
    for index, expression in enumerate(expressions):
        try:
            program, variables, functions = _compile(str(expression))
        except ValueError as error:
            verb, detail = error.args
            raise ValueError(f"{where} rule {index} {verb}: {expression!r}: {detail}") from None
        volatile = bool(functions & VOLATILE)
        rules.append(Rule(action, expression, f"{where} rule {index}", program, variables, volatile))
    return tuple(rules)


def compile_expression(expression: str) -> tuple[cel.Program, frozenset[str]]:
    """The program for one rule, and the variables it reads.

    ValueError(verb, detail) if it cannot run: "does not compile" or "does not load" (it calls a
    function the waypoint does not implement), and why.
    """
    program, variables, _ = _compile(expression)
    return program, variables


def _compile(expression: str) -> tuple[cel.Program, frozenset[str], frozenset[str]]:
    """compile_expression, and the functions the rule calls (its `default()` arguments' too)."""
    try:
        rewritten = rewrite(expression)
        program = cel.compile(rewritten.source)
        fragments = [compile_fragment(fragment) for fragment in rewritten.fragments]
    except Exception as error:  # the library raises ValueError; anything else is as fatal
        raise ValueError("does not compile", " ".join(str(error).split())) from None
    functions = set(program.functions()).union(*(f.functions() for f in fragments))
    missing = sorted(set(unsupported(functions)) | set(misqualified(expression)))
    if missing:
        raise ValueError("does not load", "; ".join(why_unsupported(name) for name in missing))
    variables = set(program.variables())
    for fragment in fragments:
        unknown = sorted(set(fragment.variables()) - set(ATTRIBUTES))
        if unknown:
            raise ValueError(
                "does not load",
                f"default()/coalesce() reads `{unknown[0]}`, which is not an agentgateway variable "
                "(a comprehension variable cannot be read inside them here)",
            )
        variables |= set(fragment.variables())
    return program, frozenset(variables), frozenset(functions)


class _Activation:
    """One CEL context with the waypoint's functions, and the inputs its variables were built from."""

    def __init__(self, unset: Iterable[str]) -> None:
        self.context = cel.Context()
        self.values: dict[str, Any] = {}
        self._last: dict[str, Any] = {}
        register(self.context, self.values)
        for name in sorted(unset):
            self.context.add_variable(name, None)  # declared, unset: `null`
            self.values[name] = None

    def set(self, name: str, key: Any, build: Callable[[Any], Any]) -> None:
        """Add variable `name` unless it was last built from an equal `key`."""
        last = self._last
        if name in last and last[name] == key:
            return
        last.pop(name, None)
        value = build(key)
        self.context.add_variable(name, value)
        self.values[name] = value
        last[name] = key


_SOURCE_INPUTS: Mapping[str, Callable[[Identity | None, RequestInfo], Hashable]] = {
    "identity": lambda source, request: source,
    "address": lambda source, request: request.source_address,
}
"""What each field of `source` is built from (`_source`)."""

_REQUEST_INPUTS: Mapping[str, Callable[[RequestInfo], Hashable]] = {
    "method": lambda request: request.method,
    "path": lambda request: request.path,
    "host": lambda request: request.host,
    "headers": lambda request: tuple(request.headers.items()),
}
"""What each field of `request` is built from (`_request`); headers as sent, so never coarser."""


def _inputs(rules: Iterable[Rule], root: str, known: Iterable[str]) -> tuple[str, ...]:
    """The fields of `root` the rules can read, among those the waypoint builds (all if unsure)."""
    read = fields_read((str(rule.expression) for rule in rules), root)
    return tuple(sorted(known if read is None else read & set(known)))


def _named_headers(names: frozenset[str]) -> Callable[[RequestInfo], Hashable]:
    """The headers the rules read by name, as sent and in order: `_request` keeps the last of a name."""

    def get(request: RequestInfo) -> Hashable:
        pairs = ((name.lower(), value) for name, value in request.headers.items())
        return tuple(pair for pair in pairs if pair[0] in names)

    return get


def _nothing(*_: Any) -> Hashable:
    return ()


def _key_of(getters: tuple[Callable[..., Hashable], ...]) -> Callable[..., Hashable]:
    """One function computing the key part from the getters' inputs (the usual one getter: itself)."""
    if not getters:
        return _nothing
    if len(getters) == 1:
        return getters[0]
    return lambda *inputs: tuple(get(*inputs) for get in getters)


class _Authorization:
    """A merged set of rules, their activations (one per caller) and their remembered decisions."""

    _provides: frozenset[str] = frozenset()

    def __init__(self, rules: Iterable[Rule], cache_size: int = DECISION_CACHE_SIZE) -> None:
        self.rules = tuple(rules)
        self._deny = [(i, r) for i, r in enumerate(self.rules) if r.action is Action.DENY]
        self._require = [(i, r) for i, r in enumerate(self.rules) if r.action is Action.REQUIRE]
        self._allow = [(i, r) for i, r in enumerate(self.rules) if r.action is Action.ALLOW]
        referenced = frozenset().union(*(r.variables for r in self.rules))
        self.variables = referenced & self._provides
        self._unset = self.variables & UNSET_ROOTS
        sources = _inputs(self.rules, "source", _SOURCE_INPUTS) if "source" in self.variables else ()
        requests = _inputs(self.rules, "request", _REQUEST_INPUTS) if "request" in self.variables else ()
        self._caller_key = _key_of(tuple(_SOURCE_INPUTS[name] for name in sources))
        headers = headers_read(str(r.expression) for r in self.rules) if "headers" in requests else None
        self._request_key = _key_of(
            tuple(
                _named_headers(headers)
                if name == "headers" and headers is not None
                else _REQUEST_INPUTS[name]
                for name in requests
            )
        )
        self._recent: tuple[Hashable, _Activation] | None = None
        self.cache_size = cache_size
        self.cacheable = not any(rule.volatile for rule in self.rules)
        self._decisions: Lru[CelDecision] | None = (
            Lru(cache_size) if cache_size > 0 and self.cacheable else None
        )
        self._activations: Lru[_Activation] = Lru(ACTIVATIONS)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], where: str) -> Self:
        return cls(compile_rules(spec, where))

    @classmethod
    def merge(cls, parts: Iterable[_Authorization]) -> Self:
        """Several attached policies as one: agentgateway evaluates all their rules together."""
        return cls(rule for part in parts for rule in part.rules)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({[r.where for r in self.rules]})"

    def cache_stats(self) -> CacheStats | None:
        """Hits, misses and evictions of the remembered decisions; None when nothing is remembered."""
        return None if self._decisions is None else self._decisions.stats()

    def _judge(self, source: Identity | None, request: RequestInfo, mcp: Hashable) -> CelDecision:
        """The decision for these inputs, remembered or evaluated (and then remembered if clean)."""
        caller = self._caller_key(source, request)
        key: Hashable = None
        decisions = self._decisions
        if decisions is not None:
            key = (caller, self._request_key(request), mcp)
            try:
                known = decisions.get(key)
            except TypeError:  # an unhashable input (a header value that is no string): evaluate
                key, known = None, None
            if known is not None:
                return known
        activation = self._activation(caller)
        if "source" in self.variables:
            activation.set("source", (source, request.source_address), _source)
        if "request" in self.variables:
            activation.set("request", request, _request)
        if "mcp" in self.variables:
            activation.set("mcp", mcp, _mcp)
        decision = self._decide(activation)
        if decisions is not None and key is not None and not decision.errors:
            decisions.put(key, decision)
        return decision

    def _activation(self, caller: Hashable) -> _Activation:
        """The caller's activation: the previous decision's if the caller is the same, else the LRU's."""
        recent = self._recent
        if recent is not None and recent[0] == caller:
            return recent[1]
        try:
            activation = self._activations.get(caller)
        except TypeError:
            return _Activation(self._unset)
        if activation is None:
            activation = _Activation(self._unset)
            self._activations.put(caller, activation)
        self._recent = (caller, activation)
        return activation

    def _decide(self, activation: _Activation) -> CelDecision:
        if not self.rules:
            return CelDecision(True, None, "no authorization rules")
        errors: list[str] = []
        for index, rule in self._deny:
            if self._matches(rule, activation, errors):
                return CelDecision(False, index, f"denied by {rule.where}", tuple(errors))
        for index, rule in self._require:
            if not self._matches(rule, activation, errors):
                return CelDecision(False, index, f"required {rule.where} did not match", tuple(errors))
        for index, rule in self._allow:
            if self._matches(rule, activation, errors):
                return CelDecision(True, index, f"allowed by {rule.where}", tuple(errors))
        if self._allow:
            return CelDecision(
                False, None, f"no allow rule matched ({len(self._allow)} rules)", tuple(errors)
            )
        return CelDecision(True, None, "no deny rule matched", tuple(errors))

    @staticmethod
    def _matches(rule: Rule, activation: _Activation, errors: list[str]) -> bool:
        try:
            result = rule.program.execute(activation.context)
        except Exception as error:  # any evaluation failure means "no match", as eval_bool does
            values = activation.values
            unset = sorted(n for n in rule.variables & UNSET_ROOTS if values.get(n) is None)
            note = f" ({', '.join(f'`{n}`' for n in unset)} null: its policy did not run)" if unset else ""
            errors.append(f"{rule.where}: {type(error).__name__}: {error}{note}")
            return False
        if not isinstance(result, bool):
            errors.append(f"{rule.where}: evaluated to {type(result).__name__}, not bool")
            return False
        return result

    def _fail_closed(self, error: Exception) -> CelDecision:
        log.exception("authorization failed unexpectedly; denying")
        return CelDecision(False, None, f"authorization failed, denied: {type(error).__name__}: {error}")


class HttpAuthorization(_Authorization):
    """`traffic.authorization`: the HTTP request and the caller, no MCP."""

    _provides = EMBEDDED_ROOTS_AT[TRAFFIC]

    def with_cache(self, cache_size: int) -> HttpAuthorization:
        """The same rules remembering up to `cache_size` decisions (0: none), with fresh caches."""
        return HttpAuthorization(self.rules, cache_size)

    def decide(self, source: Identity | None, request: RequestInfo) -> CelDecision:
        try:
            return self._judge(source, request, None)
        except Exception as error:
            return self._fail_closed(error)


class McpAuthorization(_Authorization):
    """`backend.mcp.authorization`: judges tool calls, prompt gets, resource reads; filters lists.

    `target` is the backend's MCP target name, used for `mcp.*.target` when the request does
    not name one (with one target per backend, agentgateway resolves every call to it).
    """

    _provides = EMBEDDED_ROOTS_AT[MCP_AUTHZ]

    def __init__(
        self, rules: Iterable[Rule], target: str | None = None, cache_size: int = DECISION_CACHE_SIZE
    ) -> None:
        super().__init__(rules, cache_size)
        self.target = target

    def for_target(self, target: str | None) -> McpAuthorization:
        """The same rules for a backend whose MCP target is `target` (with its own activation)."""
        return McpAuthorization(self.rules, target, self.cache_size)

    def with_cache(self, cache_size: int) -> McpAuthorization:
        """The same rules remembering up to `cache_size` decisions (0: none), with fresh caches."""
        return McpAuthorization(self.rules, self.target, cache_size)

    @staticmethod
    def judges(method_name: str) -> bool:
        """Whether agentgateway authorizes this MCP method per request.

        `initialize`, `ping`, `logging/setLevel`, `server/discover` and notifications pass;
        `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list` pass too,
        with their answers filtered (`allows_tool`).
        """
        return method_name in JUDGED_METHODS

    @staticmethod
    def filters(method_name: str) -> bool:
        return method_name in FILTERED_METHODS

    def decide(self, source: Identity | None, request: RequestInfo, mcp: McpInfo) -> CelDecision:
        try:
            return self._judge(source, request, self._mcp_key(mcp) if "mcp" in self.variables else None)
        except Exception as error:
            return self._fail_closed(error)

    def allows_tool(self, source: Identity | None, request: RequestInfo, tool_name: str) -> bool:
        """Whether `tool_name` stays in a `tools/list` answer."""
        return self.decide(source, request, McpInfo("tools/call", tool_name=tool_name)).allowed

    def _mcp_key(self, mcp: McpInfo) -> tuple[str, str, str] | None:
        if mcp.tool_name is not None:
            return ("tool", mcp.tool_target or self.target or "", mcp.tool_name)
        if mcp.prompt_name is not None:
            return ("prompt", self.target or "", mcp.prompt_name)
        if mcp.resource_uri is not None:
            return ("resource", self.target or "", mcp.resource_uri)
        if mcp.task_id is not None:  # `ResourceType::Task`: `name` is the task id (mcp/rbac.rs)
            return ("task", self.target or "", mcp.task_id)
        return None


def _source(key: tuple[Identity | None, str | None]) -> dict[str, Any]:
    identity, address = key
    value: dict[str, Any] = {}
    if identity is not None:
        value["identity"] = {
            "trustDomain": identity.trust_domain,
            "namespace": identity.namespace,
            "serviceAccount": identity.service_account,
        }
    if address is not None:
        value["address"] = address
    return value


def _request(request: RequestInfo) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "host": request.host,
        "headers": {name.lower(): value for name, value in request.headers.items()},
    }


def _mcp(key: tuple[str, str, str] | None) -> dict[str, Any]:
    if key is None:
        return {}
    kind, target, name = key
    return {kind: {"target": target, "name": name}}
