"""agentgateway's CEL authorization, with the real CEL library and the seed's allowlists.

Semantics checked here come from agentgateway's sources (`http/authorization.rs`,
`mcp/rbac.rs`, `schema/cel.md`): rules are OR'd, an erroring rule is no match, and MCP rules
see only the identity subset of the request (tool/prompt/resource name and target).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.paths import DEPLOY
from trustusbank.manifests.bundle import load_bundle
from trustusbank.mesh.authz.cel import (
    CelDecision,
    HttpAuthorization,
    Identity,
    McpAuthorization,
    McpInfo,
    RequestInfo,
)

AGENTS = "trustusbank-bank-agents"

SUPPORT = Identity("cluster.local", AGENTS, "support-bot")
FRAUD = Identity("cluster.local", AGENTS, "fraud-bot")
TRIAGE = Identity("cluster.local", AGENTS, "triage-bot")
STRANGER = Identity("cluster.local", "trustusbank-bank-vendors", "currency-converter")
REQUEST = RequestInfo("POST", "/mcp/account/", "trustusbank-agentgw.trustusbank-platform", {})


def call(tool: str, **arguments: Any) -> McpInfo:
    return McpInfo("tools/call", tool_name=tool, tool_arguments=arguments or None)


def allowlist(name: str) -> McpAuthorization:
    """The seed's backend MCP authorization for one MCP server, as deployed."""
    bundle = load_bundle(DEPLOY)
    [policy] = [m for m in bundle.objects if m.kind == "AgentgatewayPolicy" and m.name == f"{name}-allowlist"]
    return McpAuthorization.from_spec(policy.body["spec"]["backend"]["mcp"]["authorization"], policy.name)


def mcp_rules(*expressions: str, action: str = "Allow") -> McpAuthorization:
    return McpAuthorization.from_spec(
        {"action": action, "policy": {"matchExpressions": list(expressions)}}, "p"
    )


def http_rules(*expressions: str, action: str = "Allow") -> HttpAuthorization:
    return HttpAuthorization.from_spec(
        {"action": action, "policy": {"matchExpressions": list(expressions)}}, "p"
    )


@pytest.fixture(scope="module")
def account() -> McpAuthorization:
    return allowlist("account-mcp")


@pytest.fixture(scope="module")
def transaction() -> McpAuthorization:
    return allowlist("transaction-mcp")


# --- the deployed allowlists -----------------------------------------------------------------------


def test_support_bot_may_read_its_customer_account(account: McpAuthorization) -> None:
    decision = account.decide(SUPPORT, REQUEST, call("get_balance", customer_id="12345"))

    assert decision == CelDecision(True, 0, "allowed by account-mcp-allowlist rule 0")


def test_support_bot_may_not_flag_transactions(transaction: McpAuthorization) -> None:
    assert transaction.decide(SUPPORT, REQUEST, call("list_recent")).allowed
    decision = transaction.decide(SUPPORT, REQUEST, call("flag_suspicious"))

    assert not decision.allowed
    assert decision.rule is None
    assert decision.reason == "no allow rule matched (2 rules)"


def test_fraud_bot_gets_its_own_rule(account: McpAuthorization, transaction: McpAuthorization) -> None:
    assert transaction.decide(FRAUD, REQUEST, call("flag_suspicious")).rule == 1
    assert account.decide(FRAUD, REQUEST, call("get_profile")).rule == 1
    assert not account.decide(FRAUD, REQUEST, call("get_balance")).allowed


@pytest.mark.parametrize(
    "caller",
    [
        STRANGER,
        TRIAGE,
        Identity("cluster.local", "trustusbank-bank-vendors", "support-bot"),  # same name, other namespace
    ],
)
def test_other_identities_are_denied(account: McpAuthorization, caller: Identity) -> None:
    assert not account.decide(caller, REQUEST, call("get_balance")).allowed


def test_no_identity_is_denied_and_the_error_is_recorded(account: McpAuthorization) -> None:
    decision = account.decide(None, REQUEST, call("get_balance"))

    assert not decision.allowed
    assert any("identity" in error for error in decision.errors)


def test_tools_list_is_filtered_per_caller(account: McpAuthorization) -> None:
    tools = ["get_balance", "get_profile", "delete_account"]

    assert [t for t in tools if account.allows_tool(SUPPORT, REQUEST, t)] == ["get_balance", "get_profile"]
    assert [t for t in tools if account.allows_tool(FRAUD, REQUEST, t)] == ["get_profile"]
    assert [t for t in tools if account.allows_tool(STRANGER, REQUEST, t)] == []


def test_alternating_callers_never_see_a_stale_activation(account: McpAuthorization) -> None:
    """The activation is reused while its inputs are equal, and rebuilt when they change."""
    sequence = [(SUPPORT, "get_balance"), (FRAUD, "get_balance"), (FRAUD, "get_profile"), (SUPPORT, "x")] * 3

    assert [account.decide(who, REQUEST, call(tool)).allowed for who, tool in sequence] == [
        True,
        False,
        True,
        False,
    ] * 3


# --- rule semantics ----------------------------------------------------------------------------------


def test_rules_are_ored() -> None:
    rules = mcp_rules('mcp.tool.name == "a"', 'mcp.tool.name == "b"')

    assert [rules.decide(SUPPORT, REQUEST, call(t)).rule for t in "abc"] == [0, 1, None]


def test_an_erroring_rule_does_not_allow_but_a_later_rule_can() -> None:
    rules = mcp_rules('jwt.sub == "alice"', 'mcp.tool.name == "get_balance"')

    decision = rules.decide(SUPPORT, REQUEST, call("get_balance"))

    assert (decision.allowed, decision.rule) == (True, 1)
    assert len(decision.errors) == 1
    assert decision.errors[0].startswith("p rule 0: ")
    assert "`jwt` null" in decision.errors[0]  # no JWT policy: `jwt` is null, `jwt.sub` errors


def test_method_name_is_not_available_to_authorization() -> None:
    """The lint case. The write-up assumes `mcp.methodName == "tools/call"` admits every tool, and
    that would be true of an access-log expression; but agentgateway evaluates MCP authorization
    on the identity subset only (`methodName` is post-request CEL), so the rule errors and never
    matches: an allowlist built on it denies everything. Either way it says nothing about which
    tool, which is what a linter must report."""
    rules = mcp_rules('mcp.methodName == "tools/call"')

    decision = rules.decide(SUPPORT, REQUEST, McpInfo("tools/call", tool_name="delete_account"))

    assert not decision.allowed
    assert "methodName" in decision.errors[0]


@pytest.mark.parametrize("arguments", [{}, {"namespace": "dev"}])
def test_argument_conditions_never_match(arguments: dict[str, str]) -> None:
    """`mcp.tool.arguments` is post-request only: absent in authorization, with or without the argument."""
    rules = mcp_rules('mcp.tool.name == "pods_delete" && mcp.tool.arguments.namespace == "dev"')

    decision = rules.decide(SUPPORT, REQUEST, call("pods_delete", **arguments))

    assert not decision.allowed
    assert "arguments" in decision.errors[0]


def test_there_is_no_mcp_method() -> None:
    decision = mcp_rules('mcp.method == "tools/call"').decide(SUPPORT, REQUEST, call("get_balance"))

    assert not decision.allowed
    assert "method" in decision.errors[0]


def test_tool_target_defaults_to_the_backend_target() -> None:
    rules = mcp_rules('mcp.tool.target == "account-mcp" && mcp.tool.name == "get_balance"')

    assert not rules.decide(SUPPORT, REQUEST, call("get_balance")).allowed
    assert rules.for_target("account-mcp").decide(SUPPORT, REQUEST, call("get_balance")).allowed
    explicit = McpInfo("tools/call", tool_name="get_balance", tool_target="account-mcp")
    assert rules.decide(SUPPORT, REQUEST, explicit).allowed


def test_prompts_and_resources_have_their_own_attributes() -> None:
    rules = mcp_rules('mcp.prompt.name == "summary"', 'mcp.resource.name.startsWith("bank://accounts/")')

    assert rules.decide(SUPPORT, REQUEST, McpInfo("prompts/get", prompt_name="summary")).rule == 0
    resource = McpInfo("resources/read", resource_uri="bank://accounts/12345")
    assert rules.decide(SUPPORT, REQUEST, resource).rule == 1
    assert not rules.decide(SUPPORT, REQUEST, McpInfo("prompts/get", prompt_name="other")).allowed


def test_a_call_without_a_named_tool_is_denied() -> None:
    assert not mcp_rules('mcp.tool.name != "x"').decide(SUPPORT, REQUEST, McpInfo("tools/call")).allowed


def test_non_boolean_result_is_no_match() -> None:
    decision = mcp_rules("mcp.tool.name").decide(SUPPORT, REQUEST, call("get_balance"))

    assert not decision.allowed
    assert decision.errors == ("p rule 0: evaluated to str, not bool",)


def test_deny_action() -> None:
    rules = mcp_rules('mcp.tool.name == "flag_suspicious"', action="Deny")

    assert rules.decide(SUPPORT, REQUEST, call("flag_suspicious")) == CelDecision(
        False, 0, "denied by p rule 0"
    )
    assert rules.decide(SUPPORT, REQUEST, call("list_recent")).allowed  # denylist: no match → allowed


def test_an_erroring_deny_rule_fails_to_deny() -> None:
    """Why agentgateway advises against Deny: `mcp.tool.arguments` is absent, so this never denies."""
    rules = mcp_rules("mcp.tool.arguments.amount > 1000", action="Deny")

    decision = rules.decide(SUPPORT, REQUEST, call("transfer", amount=5000))

    assert decision.allowed
    assert decision.errors


def test_require_action_needs_every_rule() -> None:
    rules = mcp_rules(
        'source.identity.namespace == "trustusbank-bank-agents"', 'mcp.tool.name != "x"', action="Require"
    )

    assert rules.decide(SUPPORT, REQUEST, call("a")).allowed
    assert rules.decide(SUPPORT, REQUEST, call("x")).rule == 1
    assert not rules.decide(STRANGER, REQUEST, call("a")).allowed


def test_merged_policies_deny_wins_over_allow() -> None:
    allow = mcp_rules("true")
    deny = McpAuthorization.from_spec(
        {"action": "Deny", "policy": {"matchExpressions": ['mcp.tool.name == "x"']}}, "gateway-deny"
    )
    merged = McpAuthorization.merge([allow, deny])

    assert merged.decide(SUPPORT, REQUEST, call("a")).allowed
    decision = merged.decide(SUPPORT, REQUEST, call("x"))
    assert (decision.allowed, decision.rule, decision.reason) == (False, 1, "denied by gateway-deny rule 0")


def test_no_rules_allow() -> None:
    assert McpAuthorization([]).decide(None, REQUEST, McpInfo("tools/call")) == CelDecision(
        True, None, "no authorization rules"
    )


def test_which_methods_are_judged() -> None:
    judged = ["tools/call", "prompts/get", "resources/read", "resources/subscribe", "completion/complete"]
    passed = [
        "initialize",
        "ping",
        "notifications/initialized",
        "tools/list",
        "prompts/list",
        "server/discover",
    ]

    assert all(McpAuthorization.judges(m) for m in judged)
    assert not any(McpAuthorization.judges(m) for m in passed)
    assert McpAuthorization.filters("tools/list")
    assert not McpAuthorization.filters("tools/call")


def test_compile_error_names_the_policy_and_rule() -> None:
    spec = {"policy": {"matchExpressions": ['mcp.tool.name == "a"', 'mcp.tool.name == "b" &&']}}

    with pytest.raises(ValueError, match=r"^AgentgatewayPolicy ns/bad rule 1 does not compile: "):
        McpAuthorization.from_spec(spec, "AgentgatewayPolicy ns/bad")


# --- traffic.authorization ---------------------------------------------------------------------------


def test_traffic_authorization_sees_no_mcp() -> None:
    rules = http_rules('mcp.tool.name == "get_balance"')

    decision = rules.decide(SUPPORT, REQUEST)

    assert not decision.allowed
    assert "mcp" in decision.errors[0]


def test_traffic_authorization_on_headers_and_identity() -> None:
    rules = http_rules(
        'request.headers["x-user"] == "alice"',
        'source.identity.serviceAccount == "fraud-bot" && request.method == "POST"',
    )
    with_user = RequestInfo("POST", "/mcp/account", "h", {"X-User": "alice"})

    assert rules.decide(None, with_user).rule == 0
    assert rules.decide(FRAUD, REQUEST).rule == 1
    decision = rules.decide(SUPPORT, REQUEST)  # no x-user header: rule 0 errors, rule 1 is false
    assert not decision.allowed
    assert "x-user" in decision.errors[0]


def test_source_address() -> None:
    rules = http_rules('source.address.startsWith("10.")')

    assert rules.decide(None, RequestInfo("GET", "/", "h", {}, source_address="10.1.2.3")).allowed
    assert not rules.decide(None, RequestInfo("GET", "/", "h", {})).allowed


# --- the activation ----------------------------------------------------------------------------------


class ExplodingHeaders(Mapping[str, str]):
    """Headers that fail when read: proves what the activation touches."""

    def __getitem__(self, key: str) -> str:
        raise RuntimeError("headers were read")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("headers were read")

    def __len__(self) -> int:
        raise RuntimeError("headers were read")


def test_only_referenced_attributes_are_built(account: McpAuthorization) -> None:
    request = RequestInfo("POST", "/mcp/account/", "h", ExplodingHeaders())

    assert account.variables == {"source", "mcp"}
    assert account.decide(SUPPORT, request, call("get_balance")).allowed


def test_unexpected_failure_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    rules = http_rules("true", 'request.headers["a"] == "b"')
    request = RequestInfo("POST", "/", "h", ExplodingHeaders())

    decision = rules.decide(SUPPORT, request)

    assert not decision.allowed
    assert decision.reason.startswith("authorization failed, denied: RuntimeError")
    assert "denying" in caplog.text
