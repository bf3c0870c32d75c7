"""The CEL attributes agentgateway defines, and which of them exist where a rule is evaluated.

One table, two readers: the waypoint builds only these variables for its rules
(`mesh/authz/cel.py`) and `policy lint` resolves every reference in a rule against it
(`lint/cel_rules.py`). From agentgateway's `schema/cel.md`, `cel/types.rs` and `mcp/rbac.rs`:
`traffic.authorization` runs on the HTTP request and sees no `mcp`; `backend.mcp.authorization`
runs per tool, prompt or resource with only `mcp.{tool,prompt,resource,task}.{name,target}` set;
`mcp.methodName`, `mcp.sessionId` and `mcp.tool.arguments|result|error` are filled in after the
request, for access logs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def starts_with(path: Sequence[str], dotted: str) -> bool:
    prefix = tuple(dotted.split("."))
    return tuple(path[: len(prefix)]) == prefix


# --- where a rule is evaluated ----------------------------------------------------------------

TRAFFIC = "traffic.authorization"
MCP_AUTHZ = "backend.mcp.authorization"

ROOTS_AT: Mapping[str, frozenset[str]] = {
    TRAFFIC: frozenset(ATTRIBUTES) - {"mcp", "response"},
    MCP_AUTHZ: frozenset(ATTRIBUTES) - {"response"},
}
"""The variables agentgateway sets when it evaluates a rule at each point (no response yet)."""

UNSET_ROOTS = frozenset(
    {"jwt", "apiKey", "basicAuth", "llm", "llmRequest", "extauthz", "extproc", "mcpGuardrails", "metadata"}
)
"""Variables agentgateway declares at request time but leaves `null` when their policy did not
run (no JWT validated, no ext_authz, not an LLM backend): `jwt == null` is true and
`has(jwt.sub)` false (`crates/agentgateway/src/cel/mod.rs`, `schema/cel.md`: "only present if
the JWT policy is enabled"). The embedded waypoint runs none of those policies, so they are
always `null` here."""

EMBEDDED_ROOTS_AT: Mapping[str, frozenset[str]] = {
    TRAFFIC: frozenset({"source", "request"}) | UNSET_ROOTS,
    MCP_AUTHZ: frozenset({"source", "request", "mcp"}) | UNSET_ROOTS,
}
"""Of those, the ones the embedded waypoint sets: the request and caller, and `null` for the
ones whose policies it does not run; the rest (`proxy`, `backend`, ...) stay undeclared."""
