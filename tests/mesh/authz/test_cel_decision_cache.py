"""Remembered CEL decisions never differ from evaluating afresh.

The reference is an authorization built anew for every decision with nothing remembered (no
cache, no activation from an earlier caller): what the waypoint must answer. The cached one
sees the same calls in sequence, with a tiny cache so that evictions happen too.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.paths import DEPLOY
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.manifest import Manifest
from trustusbank.mesh.authz.cel import (
    CelDecision,
    HttpAuthorization,
    Identity,
    McpAuthorization,
    McpInfo,
    RequestInfo,
    Rule,
    compile_rules,
)
from trustusbank.mesh.waypoint.routes import WaypointConfig

AGENTS = "trustusbank-bank-agents"
SUPPORT = Identity("cluster.local", AGENTS, "support-bot")
FRAUD = Identity("cluster.local", AGENTS, "fraud-bot")
STRANGER = Identity("cluster.local", "trustusbank-bank-vendors", "currency-converter")
REQUEST = RequestInfo("POST", "/mcp/account/", "gw", {})

RULES = [
    'source.identity.serviceAccount == "support-bot" && mcp.tool.name in ["get_balance", "get_profile"]',
    'source.identity.serviceAccount == "fraud-bot" && mcp.tool.name == "get_profile"',
    'mcp.tool.name.startsWith("get_")',
    'mcp.tool.arguments.account == "42"',  # post-request only: never matches
    'request.headers["X-Tenant"] == "bank"',
    '"x-tenant" in request.headers || request.headers.traceparent == "00-1"',
    'request.headers.x_tenant == "bank"',
    'default(request.headers["x-tenant"], "none") == "none"',
    "size(request.headers) > 1",
    'request.exists(k, k == "path") && request.path.startsWith("/mcp/account")',
    'request.method == "POST"',
    'toJson(request).contains("shop")',  # the whole request, headers included
    'toJson(source).contains("10.0.0.1")',  # the whole caller, address included
    'source.address == "10.0.0.1"',
    'has(source.identity) && source.identity.namespace == "trustusbank-bank-agents"',
    'jwt.sub == "alice"',  # `jwt` is null here: an evaluation error, no match
    "mcp.tool.name",  # not a bool: no match
    'mcp.tool.target == "account-mcp"',
    'mcp.prompt.name == "p" || mcp.resource.name == "r"',
]
ACTIONS = ["Allow", "Deny", "Require"]
CALLERS = [SUPPORT, FRAUD, STRANGER, None]
TOOLS = ["get_balance", "get_profile", "transfer_funds"]
HEADERS: list[dict[str, str]] = [
    {},
    {"x-tenant": "bank"},
    {"X-Tenant": "bank"},
    {"x-tenant": "shop"},
    {"x-tenant": "bank", "traceparent": "00-1"},
    {"x-tenant": "bank", "traceparent": "00-2"},
    {"x-tenant": "bank", "X-Tenant": "shop"},  # the last of a name is the one the rule sees
    {"X-Tenant": "shop", "x-tenant": "bank", "x_tenant": "bank"},
]
PATHS = ["/mcp/account/", "/mcp/other/"]
ADDRESSES = [None, "10.0.0.1", "10.0.0.2"]

calls = st.tuples(
    st.sampled_from(CALLERS),
    st.sampled_from(TOOLS),
    st.sampled_from(HEADERS),
    st.sampled_from(PATHS),
    st.sampled_from(ADDRESSES),
    st.sampled_from([None, {"account": "42"}, {"account": "7"}]),
)
policies = st.lists(st.tuples(st.sampled_from(ACTIONS), st.sampled_from(RULES)), min_size=1, max_size=3)


def compiled(policy: list[tuple[str, str]]) -> tuple[Rule, ...]:
    return tuple(
        rule
        for index, (action, expression) in enumerate(policy)
        for rule in compile_rules(
            {"action": action, "policy": {"matchExpressions": [expression]}}, f"p{index}"
        )
    )


def afresh(rules: tuple[Rule, ...], who: Identity | None, request: RequestInfo, mcp: McpInfo) -> CelDecision:
    return McpAuthorization(rules, "account-mcp", cache_size=0).decide(who, request, mcp)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies, st.lists(calls, min_size=1, max_size=25), st.integers(1, 4))
def test_a_remembered_decision_is_the_decision(
    policy: list[tuple[str, str]], sequence: list[tuple[Any, ...]], capacity: int
) -> None:
    rules = compiled(policy)
    cached = McpAuthorization(rules, "account-mcp", cache_size=capacity)
    for who, tool, headers, path, address, arguments in sequence:
        request = RequestInfo("POST", path, "gw", headers, address)
        mcp = McpInfo("tools/call", tool_name=tool, tool_arguments=arguments)

        assert cached.decide(who, request, mcp) == afresh(rules, who, request, mcp)

    stats = cached.cache_stats()
    assert stats is not None
    assert stats.size <= capacity


def test_the_same_caller_and_tool_with_other_headers_is_decided_again() -> None:
    rules = compiled([("Allow", 'request.headers["x-tenant"] == "bank"')])
    cached = McpAuthorization(rules, "account-mcp")
    bank = RequestInfo("POST", "/", "gw", {"x-tenant": "bank"})
    shop = RequestInfo("POST", "/", "gw", {"X-Tenant": "shop"})

    answers = [
        cached.decide(SUPPORT, r, McpInfo("tools/call", tool_name="t")).allowed for r in (bank, shop, bank)
    ]

    assert answers == [True, False, True]
    stats = cached.cache_stats()
    assert stats is not None
    assert (stats.hits, stats.size) == (1, 2)


def test_a_rule_reading_one_header_shares_an_entry_across_the_others() -> None:
    cached = McpAuthorization(compiled([("Allow", 'request.headers["X-Tenant"] == "bank"')]))
    bank = [RequestInfo("POST", "/", "gw", {"X-Tenant": "bank", "traceparent": str(i)}) for i in range(3)]
    shop = RequestInfo("POST", "/", "gw", {"x-tenant": "bank", "X-TENANT": "shop", "traceparent": "9"})

    answers = [cached.decide(SUPPORT, r, McpInfo("tools/call", tool_name="t")).allowed for r in [*bank, shop]]

    assert answers == [True, True, True, False]
    stats = cached.cache_stats()
    assert stats is not None
    assert (stats.size, stats.hits) == (2, 2)


def test_rules_that_read_only_identity_and_tool_share_one_entry_across_requests() -> None:
    cached = McpAuthorization(compiled([("Allow", 'source.identity.serviceAccount == "support-bot"')]))
    for path in ("/a", "/b", "/c"):
        assert cached.decide(
            SUPPORT,
            RequestInfo("POST", path, "gw", {"traceparent": path}),
            McpInfo("tools/call", tool_name="t"),
        ).allowed

    stats = cached.cache_stats()
    assert stats is not None
    assert (stats.size, stats.hits) == (1, 2)


def test_a_decision_that_met_an_error_is_never_remembered() -> None:
    rules = compiled(
        [("Allow", 'jwt.sub == "alice"'), ("Allow", 'source.identity.serviceAccount == "support-bot"')]
    )
    cached = McpAuthorization(rules)
    first = cached.decide(SUPPORT, REQUEST, McpInfo("tools/call", tool_name="t"))
    second = cached.decide(SUPPORT, REQUEST, McpInfo("tools/call", tool_name="t"))

    assert first == second
    assert first.allowed, "the erroring rule is no match; the other allows"
    assert first.errors
    stats = cached.cache_stats()
    assert stats is not None
    assert (stats.size, stats.hits) == (0, 0)


def test_an_unexpected_failure_is_a_logged_deny_every_time(caplog: pytest.LogCaptureFixture) -> None:
    class Exploding(dict[str, str]):
        def items(self) -> Any:
            raise RuntimeError("headers were read")

    cached = HttpAuthorization(compiled([("Allow", "true"), ("Allow", 'request.headers["a"] == "b"')]))
    request = RequestInfo("POST", "/", "gw", Exploding(a="b"))
    with caplog.at_level(logging.ERROR):
        decisions = [cached.decide(SUPPORT, request) for _ in range(2)]

    assert [d.allowed for d in decisions] == [False, False]
    assert all(d.reason.startswith("authorization failed, denied: RuntimeError") for d in decisions)
    assert caplog.text.count("denying") == 2
    stats = cached.cache_stats()
    assert stats is not None
    assert stats.size == 0


def test_rules_calling_random_or_uuid_are_never_remembered() -> None:
    cached = McpAuthorization(compiled([("Allow", "random() < 2.0"), ("Deny", 'uuid() == ""')]))

    assert not cached.cacheable
    assert cached.cache_stats() is None
    assert cached.decide(SUPPORT, REQUEST, McpInfo("tools/call", tool_name="t")).allowed


def test_an_unhashable_header_is_evaluated_not_refused() -> None:
    rules = compiled([("Allow", 'request.path == "/" && size(request.headers) == 1')])
    request = RequestInfo("POST", "/", "gw", {"x": ["not", "hashable"]})  # type: ignore[dict-item]

    decision = McpAuthorization(rules).decide(SUPPORT, request, McpInfo("tools/call", tool_name="t"))

    assert decision == afresh(rules, SUPPORT, request, McpInfo("tools/call", tool_name="t"))
    assert decision.allowed


def test_the_cache_is_bounded_and_counts_its_evictions() -> None:
    cached = McpAuthorization(compiled([("Allow", 'mcp.tool.name.endsWith("1")')]), cache_size=3)
    answers = [
        cached.decide(SUPPORT, REQUEST, McpInfo("tools/call", tool_name=f"t{i}")).allowed for i in range(12)
    ]

    assert answers == [i % 10 == 1 for i in range(12)]
    stats = cached.cache_stats()
    assert stats is not None
    assert (stats.size, stats.capacity, stats.evictions) == (3, 3, 9)


def _with_account_tools(manifest: Manifest, tools: list[str]) -> Manifest:
    if manifest.kind != "AgentgatewayPolicy" or manifest.name != "account-mcp-allowlist":
        return manifest
    body = copy.deepcopy(manifest.body)
    listed = ", ".join(f'"{t}"' for t in tools)
    body["spec"]["backend"]["mcp"]["authorization"]["policy"]["matchExpressions"] = [
        f'source.identity.serviceAccount == "support-bot" && mcp.tool.name in [{listed}]'
    ]
    return dataclasses.replace(manifest, body=body)


def test_a_policy_reload_between_two_identical_calls_is_obeyed() -> None:
    """The waypoint reloads by building a new table; its authorizations start with empty caches."""
    objects = load_bundle(DEPLOY).objects

    def account_policy(tools: list[str]) -> McpAuthorization:
        table = WaypointConfig.from_manifests(
            [_with_account_tools(m, tools) for m in objects], "trustusbank-platform", "trustusbank-agentgw"
        )
        match = table.match("/mcp/account/")
        assert match is not None
        assert match.mcp_authorization is not None
        return match.mcp_authorization

    balance = McpInfo("tools/call", tool_name="get_balance")
    before = account_policy(["get_balance", "get_profile"])
    assert before.decide(SUPPORT, REQUEST, balance).allowed
    assert before.decide(SUPPORT, REQUEST, balance).allowed  # now remembered

    after = account_policy(["get_profile"])

    assert not after.decide(SUPPORT, REQUEST, balance).allowed
    stats = before.cache_stats()
    assert stats is not None
    assert stats.hits == 1
