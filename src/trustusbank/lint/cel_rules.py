"""What one agentgateway CEL rule means where it runs: references that error, whether it can
ever be true, and what an Allow rule lets through (read by `lint/agentgateway.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trustusbank.lint.cel_refs import (
    Binary,
    Call,
    Conditional,
    ListExpr,
    Literal,
    Node,
    Parsed,
    Reference,
    Unary,
    references,
    split,
    static_path,
    unparse,
)
from trustusbank.mesh.authz.cel_attributes import (
    CALLER_ROOTS,
    CALLER_SOURCE,
    MCP_AUTHZ,
    POST_REQUEST,
    SUGGESTIONS,
    TOOL_ATTRIBUTES,
    TRAFFIC,
    resolve,
    starts_with,
)

# --- where a rule is evaluated ----------------------------------------------------------------


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
    if where == MCP_AUTHZ and any(starts_with(path, p) for p in POST_REQUEST):
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
    return any(starts_with(path, a) for a in TOOL_ATTRIBUTES)


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
        if refs and all(starts_with(p, "mcp.prompt") or starts_with(p, "mcp.resource") for p in refs):
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
