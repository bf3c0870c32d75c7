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
only the variables the rules reference are built, and a variable whose inputs did not change
since the previous decision is not rebuilt. Decisions are synchronous, so one context per
policy is safe under asyncio.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
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
from trustusbank.mesh.authz.cel_functions import (
    compile_fragment,
    misqualified,
    register,
    rewrite,
    unsupported,
    why_unsupported,
)

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
            program, variables = compile_expression(str(expression))
        except ValueError as error:
            verb, detail = error.args
            raise ValueError(f"{where} rule {index} {verb}: {expression!r}: {detail}") from None
        rules.append(Rule(action, expression, f"{where} rule {index}", program, variables))
    return tuple(rules)


def compile_expression(expression: str) -> tuple[cel.Program, frozenset[str]]:
    """The program for one rule, and the variables it reads.

    ValueError(verb, detail) if it cannot run: "does not compile" or "does not load" (it calls a
    function the waypoint does not implement), and why.
    """
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
    return program, frozenset(variables)


class _Authorization:
    """A merged set of rules and the activation they need."""

    _provides: frozenset[str] = frozenset()

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._deny = [(i, r) for i, r in enumerate(self.rules) if r.action is Action.DENY]
        self._require = [(i, r) for i, r in enumerate(self.rules) if r.action is Action.REQUIRE]
        self._allow = [(i, r) for i, r in enumerate(self.rules) if r.action is Action.ALLOW]
        referenced = frozenset().union(*(r.variables for r in self.rules))
        self.variables = referenced & self._provides
        self._context = cel.Context()
        self._values: dict[str, Any] = {}
        self._last: dict[str, Any] = {}
        register(self._context, self._values)
        for name in sorted(self.variables & UNSET_ROOTS):
            self._context.add_variable(name, None)  # declared, unset: `null`
            self._values[name] = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], where: str) -> Self:
        return cls(compile_rules(spec, where))

    @classmethod
    def merge(cls, parts: Iterable[_Authorization]) -> Self:
        """Several attached policies as one: agentgateway evaluates all their rules together."""
        return cls(rule for part in parts for rule in part.rules)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({[r.where for r in self.rules]})"

    def _set(self, name: str, key: Any, build: Any) -> None:
        """Add variable `name` unless it was last built from an equal `key`."""
        if name in self._last and self._last[name] == key:
            return
        self._last.pop(name, None)
        value = build(key)
        self._context.add_variable(name, value)
        self._values[name] = value
        self._last[name] = key

    def _decide(self) -> CelDecision:
        if not self.rules:
            return CelDecision(True, None, "no authorization rules")
        errors: list[str] = []
        for index, rule in self._deny:
            if self._matches(rule, errors):
                return CelDecision(False, index, f"denied by {rule.where}", tuple(errors))
        for index, rule in self._require:
            if not self._matches(rule, errors):
                return CelDecision(False, index, f"required {rule.where} did not match", tuple(errors))
        for index, rule in self._allow:
            if self._matches(rule, errors):
                return CelDecision(True, index, f"allowed by {rule.where}", tuple(errors))
        if self._allow:
            return CelDecision(
                False, None, f"no allow rule matched ({len(self._allow)} rules)", tuple(errors)
            )
        return CelDecision(True, None, "no deny rule matched", tuple(errors))

    def _matches(self, rule: Rule, errors: list[str]) -> bool:
        try:
            result = rule.program.execute(self._context)
        except Exception as error:  # any evaluation failure means "no match", as eval_bool does
            unset = sorted(n for n in rule.variables & UNSET_ROOTS if self._values.get(n) is None)
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

    def _set_source(self, source: Identity | None, request: RequestInfo) -> None:
        self._set("source", (source, request.source_address), _source)

    def _set_request(self, request: RequestInfo) -> None:
        self._set("request", request, _request)


class HttpAuthorization(_Authorization):
    """`traffic.authorization`: the HTTP request and the caller, no MCP."""

    _provides = EMBEDDED_ROOTS_AT[TRAFFIC]

    def decide(self, source: Identity | None, request: RequestInfo) -> CelDecision:
        try:
            if "source" in self.variables:
                self._set_source(source, request)
            if "request" in self.variables:
                self._set_request(request)
            return self._decide()
        except Exception as error:
            return self._fail_closed(error)


class McpAuthorization(_Authorization):
    """`backend.mcp.authorization`: judges tool calls, prompt gets, resource reads; filters lists.

    `target` is the backend's MCP target name, used for `mcp.*.target` when the request does
    not name one (with one target per backend, agentgateway resolves every call to it).
    """

    _provides = EMBEDDED_ROOTS_AT[MCP_AUTHZ]

    def __init__(self, rules: Iterable[Rule], target: str | None = None) -> None:
        super().__init__(rules)
        self.target = target

    def for_target(self, target: str | None) -> McpAuthorization:
        """The same rules for a backend whose MCP target is `target` (with its own activation)."""
        return McpAuthorization(self.rules, target)

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
            if "source" in self.variables:
                self._set_source(source, request)
            if "request" in self.variables:
                self._set_request(request)
            if "mcp" in self.variables:
                self._set("mcp", self._mcp_key(mcp), _mcp)
            return self._decide()
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
