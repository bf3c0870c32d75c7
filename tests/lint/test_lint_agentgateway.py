"""AgentgatewayPolicy lint, and the CEL reference extraction it rests on.

The attribute facts asserted here come from agentgateway's sources: `schema/cel.md` (the
CEL context), `mcp/rbac.rs` (MCP authorization sees only `mcp.tool|prompt|resource.{name,
target}`), `http/authorization.rs` (Allow/Deny/Require, a failing rule does not match).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.lint import DEPLOY, by_code, fixture, line_of, lint, shape, unexpected
from trustusbank.lint import Severity, cel_refs
from trustusbank.lint.cel_refs import CelSyntaxError, parse, split, tokenize, unparse

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def refs(expression: str) -> list[str]:
    return [r.dotted + ("?" if r.presence else "") for r in parse(expression).references]


# --- CEL references ---------------------------------------------------------------------------


def test_member_and_index_access_build_one_path() -> None:
    assert refs('mcp.tool.name == "x"') == ["mcp.tool.name"]
    assert refs('request.headers["x-user"] == jwt.sub') == ["request.headers.x-user", "jwt.sub"]
    assert refs("source.identity['serviceAccount'] == 'a'") == ["source.identity.serviceAccount"]


def test_strings_never_produce_references() -> None:
    assert refs('"mcp.method == 1" == request.path') == ["request.path"]
    assert refs("r'mcp.tool\\n' + '''a \"b\" mcp.x''' == request.path") == ["request.path"]
    assert refs('request.path == "a\\"mcp.method"') == ["request.path"]


def test_in_and_boolean_operators() -> None:
    expression = (
        'mcp.tool.name in ["get_balance", "get_profile"] && !(source.address == "1.2.3.4") || jwt.admin'
    )
    parsed = parse(expression)

    assert refs(expression) == ["mcp.tool.name", "source.address", "jwt.admin"]
    assert parsed.root is not None
    assert [unparse(d) for d in split(parsed.root, "||")] == [
        '(mcp.tool.name in ["get_balance", "get_profile"]) && !(source.address == "1.2.3.4")',
        "jwt.admin",
    ]


def test_method_calls_are_not_attributes_but_their_targets_are() -> None:
    assert refs('request.path.startsWith("/mcp") && size(request.headers) > 0') == [
        "request.path",
        "request.headers",
    ]


def test_macro_and_bind_variables_are_not_attributes() -> None:
    assert refs('jwt.groups.exists(g, g == "admin")') == ["jwt.groups"]
    assert refs("cel.bind(sa, source.identity.serviceAccount, sa == 'x' || sa == mcp.tool.name)") == [
        "source.identity.serviceAccount",
        "mcp.tool.name",
    ]
    assert refs("jwt.roles.all(k, v, v == request.method)") == ["jwt.roles", "request.method"]


def test_has_marks_a_presence_test_and_dynamic_index_reads_both_sides() -> None:
    assert refs("has(jwt.sub)") == ["jwt.sub?"]
    assert refs("request.headers[source.identity.namespace] == 'x'") == [
        "request.headers",
        "source.identity.namespace",
    ]


def test_tokenizer_keeps_operators_whole() -> None:
    tokens = [t.text for t in tokenize('a.b<=1&&!c||d!="x"')]

    assert tokens == ["a", ".", "b", "<=", "1", "&&", "!", "c", "||", "d", "!=", '"x"', ""]


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ('mcp.tool.name = "x"', "token recognition error"),
        ('mcp.tool.name == "x" &&', "mismatched input '<EOF>'"),
        ('"unterminated', "token recognition error"),
        ("(a.b", "1:5"),
    ],
)
def test_syntax_errors_carry_the_parser_message(expression: str, fragment: str) -> None:
    with pytest.raises(CelSyntaxError) as raised:
        parse(expression)

    assert fragment in raised.value.message


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('mcp.tool.name = "x"', "unexpected character '=' at column 15"),
        ('mcp.tool.name == "x', "unterminated string starting at column 18"),
        ("a.b[", "unexpected 'end of expression' at column 5"),
        ("a &&", "unexpected 'end of expression' at column 5"),
    ],
)
def test_own_parser_reports_errors_when_the_cel_package_is_absent(
    monkeypatch: pytest.MonkeyPatch, expression: str, message: str
) -> None:
    monkeypatch.setattr(cel_refs, "_cel", None)

    with pytest.raises(CelSyntaxError) as raised:
        parse(expression)

    assert raised.value.message == message


def test_own_parser_agrees_with_the_cel_package_on_the_deploy_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    expression = (
        'source.identity.namespace == "trustusbank-bank-agents" && '
        'source.identity.serviceAccount == "support-bot" && mcp.tool.name in ["get_balance", "get_profile"]'
    )
    with_cel = parse(expression)
    monkeypatch.setattr(cel_refs, "_cel", None)

    assert parse(expression) == with_cel
    assert [r.dotted for r in with_cel.references] == [
        "source.identity.namespace",
        "source.identity.serviceAccount",
        "mcp.tool.name",
    ]


# --- AgentgatewayPolicy -----------------------------------------------------------------------


def test_deploy_allowlists_are_clean() -> None:
    findings = [f for f in lint(DEPLOY) if f.kind == "AgentgatewayPolicy"]

    assert findings == []


def test_mcp_attributes_under_traffic_authorization_never_match() -> None:
    path = fixture("agw-mcp-in-traffic.yaml")
    findings = lint(path)
    policy = "trustusbank-platform/ticket-tools"

    assert shape(findings) == [
        (line_of(path, "matchExpressions:"), E, "agw-never-matches", policy, None),
        (line_of(path, "mcp.tool.name"), E, "agw-mcp-in-traffic", policy, 0),
    ]
    assert findings[0].message == "no rule of this Allow list can ever match (rules 0): it denies everything"
    assert "HTTP 403" in findings[0].on_cluster
    assert "traffic authorization is HTTP-level and sees no MCP" in findings[1].message


def test_attributes_that_do_not_exist_or_are_not_there_yet() -> None:
    path = fixture("agw-unknown-attributes.yaml")
    findings = lint(path)
    policy = "trustusbank-platform/account-typos"

    assert shape(findings) == [
        (line_of(path, "matchExpressions:"), E, "agw-never-matches", policy, None),
        (line_of(path, "mcp.method =="), E, "agw-unknown-attribute", policy, 0),
        (line_of(path, "service_account"), E, "agw-unknown-attribute", policy, 1),
        (line_of(path, 'mcp.tool == "get_profile"'), E, "agw-object-compared", policy, 2),
        (line_of(path, "caller.name"), E, "agw-unknown-attribute", policy, 3),
        (line_of(path, "arguments"), E, "agw-post-request-attribute", policy, 4),
    ]
    messages = [f.message for f in findings]
    assert "did you mean `mcp.methodName`?" in messages[1]
    assert "did you mean `source.identity.serviceAccount`?" in messages[2]
    assert messages[3].startswith("`mcp.tool` is an object, not a string")
    assert messages[4] == "`caller` is not a CEL variable agentgateway defines"
    assert messages[5].startswith(
        "`mcp.tool.arguments.customer_id` is not available during MCP authorization"
    )
    assert "tools/list comes back empty" in findings[0].on_cluster


def test_or_d_rule_naming_no_tool_and_no_caller_allows_everything() -> None:
    path = fixture("agw-allow-list-admits-everything.yaml")
    findings = lint(path)
    policy = "trustusbank-platform/account-allowlist"

    assert shape(findings) == [
        (line_of(path, "request.path"), E, "agw-allows-everything", policy, 1),
        (line_of(path, "tools/call"), E, "agw-allows-everything", policy, 2),
        (line_of(path, "tools/call"), E, "agw-post-request-attribute", policy, 2),
        (line_of(path, "'true'"), E, "agw-allows-everything", policy, 3),
    ]
    assert findings[0].message.startswith("rules are OR'd: this rule allows every tool to every caller;")
    # mcp.methodName is not set during authorization: the rule is wrong twice, and says so.
    assert "as its author means it; today it never matches" in findings[1].message


def test_rule_naming_a_caller_but_no_tool_allows_that_caller_every_tool() -> None:
    path = fixture("agw-allow-list-identity-only.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "fraud-bot"),
            W,
            "agw-allows-every-tool",
            "trustusbank-platform/transaction-allowlist",
            0,
        )
    ]
    assert 'source.identity.serviceAccount == "fraud-bot"' in finding.message


def test_seed_account_mcp_allowlist_is_wrong_three_ways() -> None:
    path = fixture("seed-account-mcp-allowlist.yaml")
    findings = lint(path)
    policy = "trustusbank-platform/account-mcp-allowlist"
    rule = [line_of(path, 'mcp.method == "initialize"')] + [line_of(path, "- 'mcp.", n) for n in (2, 3, 4, 5)]

    assert shape(findings) == [
        (line_of(path, "matchExpressions:"), E, "agw-never-matches", policy, None),
        (rule[0], E, "agw-mcp-in-traffic", policy, 0),
        (rule[0], E, "agw-unknown-attribute", policy, 0),
        (rule[1], E, "agw-mcp-in-traffic", policy, 1),
        (rule[1], E, "agw-unknown-attribute", policy, 1),
        (rule[2], E, "agw-allows-everything", policy, 2),
        (rule[2], E, "agw-mcp-in-traffic", policy, 2),
        (rule[2], E, "agw-unknown-attribute", policy, 2),
        (rule[3], E, "agw-mcp-in-traffic", policy, 3),
        (rule[3], INFO, "agw-allows-every-caller", policy, 3),
        (rule[4], E, "agw-mcp-in-traffic", policy, 4),
        (rule[4], INFO, "agw-allows-every-caller", policy, 4),
    ]
    # Finding 8: HTTP-level, no MCP, so the Allow list denies everything, rule by rule.
    assert findings[0].message == (
        "no rule of this Allow list can ever match (rules 0, 1, 2, 3, 4): it denies everything"
    )
    # Finding 9: there is no mcp.method.
    assert "(did you mean `mcp.methodName`?)" in findings[2].message
    # Finding 10: OR'd with the tool rules, `tools/call` would admit every tool to every caller.
    assert "rules are OR'd: this rule allows every tool to every caller" in findings[5].message


def test_mcp_authorization_on_a_backend_without_mcp_has_no_mcp_context() -> None:
    path = fixture("agw-mcp-authz-backend-without-mcp.yaml")
    findings = lint(path)

    [finding] = by_code(findings, "agw-no-mcp-context")
    assert (finding.line, finding.severity, finding.policy) == (
        line_of(path, "- group: agentgateway.dev"),
        E,
        "trustusbank-platform/fx-tools",
    )
    assert finding.message == (
        "no MCP context: backend.mcp.authorization applies to AgentgatewayBackends with mcp targets; "
        "AgentgatewayBackend trustusbank-platform/fx-api has no spec.mcp"
    )
    # The loader's own verdict on the document is reported too, as an error.
    assert {f.severity for f in by_code(findings, "manifest-invalid")} <= {E}


def test_mcp_authorization_on_a_route_to_a_plain_service_has_no_mcp_context() -> None:
    path = fixture("agw-mcp-authz-route-to-service.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "- group: gateway.networking.k8s.io"),
            E,
            "agw-no-mcp-context",
            "trustusbank-platform/account-mcp-allowlist",
            None,
        )
    ]
    assert "routes to no MCP backend (its backends: Service account-mcp)" in finding.message


def test_mcp_authorization_on_a_route_to_an_mcp_backend_applies(tmp_path: Path) -> None:
    # agentgateway applies backend policies attached to a route to the route's backends.
    bundle = tmp_path / "deploy"
    shutil.copytree(DEPLOY, bundle)
    policy = (bundle / "06-agentgateway" / "mcp-allowlists.yaml").read_text()
    policy = policy.replace(
        "    - group: agentgateway.dev\n      kind: AgentgatewayBackend\n      name: ticket-mcp\n",
        "    - group: gateway.networking.k8s.io\n      kind: HTTPRoute\n      name: ticket-mcp-route\n",
    )
    (bundle / "06-agentgateway" / "mcp-allowlists.yaml").write_text(policy)

    assert unexpected(lint(bundle)) == []


def test_cel_that_does_not_parse_is_an_error_with_the_parser_message() -> None:
    path = fixture("agw-cel-syntax.yaml")
    [finding] = by_code(lint(path), "agw-cel-syntax")

    assert (finding.line, finding.severity, finding.rule) == (
        line_of(path, 'mcp.tool.name = "create_ticket"'),
        E,
        1,
    )
    assert finding.message.startswith(
        "CEL does not parse: 1:64: Syntax error: token recognition error at: '= '"
    )
    assert "always fails" in finding.on_cluster


def test_a_function_the_waypoint_does_not_implement_is_an_error() -> None:
    """agentgateway's functions (crates/celx/src/lib.rs): `lowerAscii` is one, `regexReplace` is
    one the waypoint does not implement, `toLower` is none; the waypoint refuses both at load."""
    path = fixture("agw-unsupported-function.yaml")
    findings = by_code(lint(path), "agw-unsupported-function")

    assert [(f.line, f.severity, f.rule) for f in findings] == [
        (line_of(path, "regexReplace("), E, 1),
        (line_of(path, "toLower("), E, 2),
    ]
    assert "`regexReplace()` is an agentgateway function the embedded waypoint does not implement" in (
        findings[0].message
    )
    assert "`toLower()` is not a CEL function agentgateway defines" in findings[1].message
    assert "keeps its last good configuration" in findings[0].on_cluster


def test_access_policy_graph_contradiction() -> None:
    path = fixture("kagent-handoff-contradiction.yaml")
    [finding] = [f for f in lint(path) if f.code != "oss-access-enforcement"]  # info: who enforces it

    assert shape([finding]) == [
        (line_of(path, "- type: Agent"), E, "kagent-handoff-denied", "trustusbank-bank-agents/support-bot", 0)
    ]
    assert finding.message == (
        "support-bot hands off to fraud-bot, but the AccessPolicies let only triage-bot call fraud-bot: "
        "the graph contradicts itself"
    )


# --- traffic.extProc: the embedded waypoint's wire is not agentgateway's -------------------------

EXTRAS_GUARD = DEPLOY / "extras" / "mcp-guard-policy.yaml"


def test_every_ext_proc_policy_warns_that_agentgateway_speaks_grpc(tmp_path: Path) -> None:
    """The guard policy as the bench applies it (next to the allowlists): one warning per policy,
    on its `extProc` line, and nothing else the deploy bundle does not already have."""
    bundle = tmp_path / "deploy"
    shutil.copytree(DEPLOY, bundle)
    placed = bundle / "06-agentgateway" / "mcp-guard-policy.yaml"
    shutil.copyfile(EXTRAS_GUARD, placed)

    findings = lint(bundle)
    warnings = by_code(findings, "agw-extproc-grpc")

    assert shape(warnings) == [
        (line_of(placed, "extProc:", n), W, "agw-extproc-grpc", f"trustusbank-platform/{name}-guard", None)
        for n, name in enumerate(("account-mcp", "transaction-mcp", "ticket-mcp", "currency-converter"), 1)
    ]
    assert all("gRPC" in w.message and "mcp-guard does not speak it yet" in w.message for w in warnings)
    assert all("refused" in w.on_cluster for w in warnings)
    assert [f for f in unexpected(findings) if f.code != "agw-extproc-grpc"] == []


def test_the_deploy_bundle_alone_has_no_ext_proc_warning() -> None:
    assert by_code(lint(DEPLOY), "agw-extproc-grpc") == []
