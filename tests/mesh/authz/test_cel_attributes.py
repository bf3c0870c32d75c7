"""One CEL attribute table, two readers: what the waypoint fills in is what lint accepts.

Each attribute the embedded waypoint sets must exist in agentgateway's table (else lint
would call a working rule broken), and each attribute agentgateway only sets after the
request must never match in the waypoint (else a rule lint calls dead would work here).
"""

from __future__ import annotations

import pytest

from trustusbank.lint.cel_refs import parse
from trustusbank.lint.cel_rules import reference_problems
from trustusbank.mesh.authz.cel import HttpAuthorization, Identity, McpAuthorization, McpInfo, RequestInfo
from trustusbank.mesh.authz.cel_attributes import (
    ATTRIBUTES,
    EMBEDDED_ROOTS_AT,
    MCP_AUTHZ,
    POST_REQUEST,
    ROOTS_AT,
    TRAFFIC,
    UNSET_ROOTS,
    resolve,
)

CALLER = Identity("cluster.local", "trustusbank-bank-agents", "support-bot")
REQUEST = RequestInfo("POST", "/mcp", "account-mcp", {"X-Tenant": "bank"}, source_address="127.0.0.9")
CALL = McpInfo("tools/call", tool_name="get_balance", tool_target="account", tool_arguments={"id": 1})

FILLED_AT_MCP = (
    "source.identity.trustDomain",
    "source.identity.namespace",
    "source.identity.serviceAccount",
    "source.address",
    "request.method",
    "request.path",
    "request.host",
    "request.headers",
    "mcp.tool.name",
    "mcp.tool.target",
)


def allows(where: str, expression: str) -> bool:
    spec = {"action": "Allow", "policy": {"matchExpressions": [expression]}}
    if where == TRAFFIC:
        return HttpAuthorization.from_spec(spec, "p").decide(CALLER, REQUEST).allowed
    return McpAuthorization.from_spec(spec, "p").decide(CALLER, REQUEST, CALL).allowed


def test_the_waypoint_fills_only_roots_agentgateway_sets_there() -> None:
    for where in (TRAFFIC, MCP_AUTHZ):
        assert EMBEDDED_ROOTS_AT[where] <= ROOTS_AT[where] <= frozenset(ATTRIBUTES)
    assert "mcp" not in ROOTS_AT[TRAFFIC]


@pytest.mark.parametrize("root", sorted(UNSET_ROOTS))
@pytest.mark.parametrize("where", [TRAFFIC, MCP_AUTHZ])
def test_variables_agentgateway_may_leave_unset_are_null_here(where: str, root: str) -> None:
    """schema/cel.md: `jwt`, `apiKey`, ... are only present if their policy ran; else `null`."""
    assert root in ROOTS_AT[where]
    assert allows(where, f"{root} == null && !has({root}.x)")
    assert not reference_problems(parse(f"{root} == null"), where)


@pytest.mark.parametrize("path", FILLED_AT_MCP)
def test_every_attribute_the_waypoint_fills_is_one_lint_knows_and_it_is_set(path: str) -> None:
    assert resolve(path.split(".")).known
    assert not reference_problems(parse(f"has({path})"), MCP_AUTHZ)
    assert allows(MCP_AUTHZ, f"has({path})")


@pytest.mark.parametrize("path", POST_REQUEST)
def test_post_request_attributes_never_match_in_the_waypoint_and_lint_says_so(path: str) -> None:
    codes = {p.code for p in reference_problems(parse(f"{path} != null"), MCP_AUTHZ)}
    assert "agw-post-request-attribute" in codes
    assert not allows(MCP_AUTHZ, f"{path} != null")


def test_mcp_is_unseen_in_traffic_authorization_by_both_readers() -> None:
    codes = {p.code for p in reference_problems(parse('mcp.tool.name == "get_balance"'), TRAFFIC)}
    assert "agw-mcp-in-traffic" in codes
    assert not allows(TRAFFIC, 'mcp.tool.name == "get_balance"')
    assert allows(MCP_AUTHZ, 'mcp.tool.name == "get_balance"')


def test_header_names_are_read_lower_case() -> None:
    assert allows(TRAFFIC, 'request.headers["x-tenant"] == "bank"')
