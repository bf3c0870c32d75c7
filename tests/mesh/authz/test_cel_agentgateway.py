"""The waypoint's CEL is agentgateway's (v1.4.1): unset variables, its functions, header names.

Upstream facts, per table (paths in the agentgateway repository):

- `schema/cel.md`: `jwt` "is only present if the JWT policy is enabled" (likewise `apiKey`,
  `basicAuth`, `llm`, `extauthz`, ...): with no token it is `null`, not an undeclared name;
  `crates/celx/src/general.rs` (`default`): an expression that does not resolve or is `null`
  yields the fallback.
- `crates/celx/src/lib.rs` (`insert_all`): the strings extension (`crates/celx/src/strings.rs`),
  math, `crates/celx/src/cidr.rs` (`cidr`, `ip`, `isIP`, `containsIP`, ...) and
  `crates/celx/src/general.rs` (`json`, `toJson`, `base64.encode`, `default`, `fail`, ...).
- `crates/agentgateway/src/cel/mod.rs` and the HTTP `HeaderMap` it exposes: header names are
  case-insensitive, so `request.headers["X-Tenant"]` reads the `x-tenant` header.
"""

from __future__ import annotations

import pytest

from trustusbank.mesh.authz.cel import (
    HttpAuthorization,
    Identity,
    McpAuthorization,
    McpInfo,
    RequestInfo,
)

CALLER = Identity("cluster.local", "trustusbank-bank-agents", "support-bot")
REQUEST = RequestInfo("POST", "/mcp/", "gw", {"X-Tenant": "acme", "user-agent": "ua/1"}, "10.1.2.3")


def deny(*expressions: str) -> HttpAuthorization:
    return HttpAuthorization.from_spec(
        {"action": "Deny", "policy": {"matchExpressions": list(expressions)}}, "p"
    )


def matches(expression: str, request: RequestInfo = REQUEST, source: Identity | None = CALLER) -> bool:
    """Whether `expression` holds, as a Deny rule: it matches only if it evaluates to true."""
    decision = deny(expression).decide(source, request)
    return not decision.allowed


# --- 1. unset variables are null (schema/cel.md; crates/celx/src/general.rs `default`) ---------

NULL_CASES = [
    ("jwt == null", True),
    ("jwt != null", False),
    ("has(jwt.sub)", False),
    ("!has(jwt.sub)", True),
    ('default(jwt.sub, "anon") == "anon"', True),
    ('default(jwt.groups, ["none"]) == ["none"]', True),
    ("apiKey == null && basicAuth == null && llm == null && extauthz == null", True),
    ("has(apiKey.key) || has(basicAuth.username) || has(llm.provider)", False),
    ('default(request.headers["x-user"], "anonymous") == "anonymous"', True),
    ('default(request.headers["x-tenant"], "none") == "acme"', True),
    ('default(source.identity.serviceAccount, "none") == "support-bot"', True),
    ('coalesce(jwt.sub, request.headers["x-tenant"]) == "acme"', True),
    ('jwt.sub == "alice"', False),  # a field of null errors: no match
]


@pytest.mark.parametrize(("expression", "expected"), NULL_CASES)
def test_unset_variables_are_null(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_a_deny_on_a_missing_jwt_denies() -> None:
    """`jwt == null` as Deny: today's undeclared `jwt` made it error, so no match, so allowed."""
    decision = deny("jwt == null").decide(CALLER, REQUEST)

    assert (decision.allowed, decision.rule, decision.errors) == (False, 0, ())


def test_default_without_identity_falls_back() -> None:
    assert matches('default(source.identity.namespace, "none") == "none"', source=None)


# --- 2. agentgateway's functions (crates/celx/src/{strings,cidr,general}.rs) -----------------

FUNCTION_CASES = [
    ('"DeleteAll".lowerAscii() == "deleteall"', True),
    ('"TacoCat".upperAscii() == "TACOCAT"', True),
    ('"a,b,c".split(",") == ["a", "b", "c"]', True),
    ('["a", "b"].join("-") == "a-b"', True),
    ('"hello hello".replace("he", "we") == "wello wello"', True),
    ('"  x  ".trim() == "x"', True),
    ('"hello mellow".indexOf("ello") == 1', True),
    ('"hello mellow".lastIndexOf("ello") == 7', True),
    ('"tacocat".substring(0, 4) == "taco"', True),
    ('"abc".charAt(1) == "b"', True),
    ('"hello".stripPrefix("he") == "llo"', True),
    ('"hello".stripSuffix("lo") == "hel"', True),
    ("math.greatest(1, 5, 3) == 5", True),
    ('cidr("10.0.0.0/8").containsIP(source.address)', True),
    ('cidr("10.0.0.0/8").containsIP(ip("192.168.0.1"))', False),
    ('cidr("10.0.0.0/8").containsCIDR(cidr("10.1.0.0/16"))', True),
    ('cidr("10.1.2.3/8").masked() == cidr("10.0.0.0/8")', True),
    ('cidr("10.0.0.0/8").prefixLength() == 8', True),
    ("ip(source.address).family() == 4 && !ip(source.address).isLoopback()", True),
    ('ip("127.0.0.1").isLoopback() && isIP("::1") && !isIP("nope")', True),
    ("json('{\"a\": 1}').a == 1", True),
    ('toJson({"a": 1}) == \'{"a":1}\'', True),
    ('base64.encode("hi") == "aGk=" && base64.decode("aGk=") == b"hi"', True),
    ('fail("no") == "x"', False),  # fail() errors: no match
]


@pytest.mark.parametrize(("expression", "expected"), FUNCTION_CASES)
def test_agentgateway_functions(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_a_deny_on_a_lower_cased_tool_name_denies_mixed_case() -> None:
    rules = McpAuthorization.from_spec(
        {
            "action": "Deny",
            "policy": {"matchExpressions": ['mcp.tool.name.lowerAscii().startsWith("delete")']},
        },
        "p",
    )

    denied = rules.decide(CALLER, REQUEST, McpInfo("tools/call", tool_name="DeleteAll"))
    allowed = rules.decide(CALLER, REQUEST, McpInfo("tools/call", tool_name="get_balance"))

    assert (denied.allowed, denied.rule, denied.errors) == (False, 0, ())
    assert (allowed.allowed, allowed.errors) == (True, ())


REFUSED = [
    ('mcp.tool.name.regexReplace("x", "y") == "z"', "regexReplace"),
    ('request.path.with(p, p == "/")', "with"),
    ('mcp.tool.name.toLower() == "x"', "toLower"),
    ("nosuch(1)", "nosuch"),
    ('"abc".reverse() == "cba"', "reverse"),
    ("greatest(1, 2) == 2", "math.greatest"),  # only namespaced: would be undefined when run
    ('"hi".encode() == "aGk="', "base64.encode"),
    ("[1].exists(x, default(x, 0) == 1)", "`x`"),
]


@pytest.mark.parametrize(("expression", "named"), REFUSED)
def test_a_function_the_waypoint_cannot_run_is_refused_at_load(expression: str, named: str) -> None:
    with pytest.raises(ValueError, match=r"^p rule 1 does not load: ") as raised:
        deny("false", expression)

    assert named in str(raised.value)


# --- 3. header names are case-insensitive (crates/agentgateway/src/cel/mod.rs) ---------------

HEADER_CASES = [
    ('request.headers["X-Tenant"] == "acme"', True),
    ('request.headers["x-tenant"] == "acme"', True),
    ('request.headers["X-TENANT"] == "acme"', True),
    ('request.headers["User-Agent"] == "ua/1"', True),
    ('"X-Tenant" in request.headers', True),
    ('"x-tenant" in request.headers', True),
    ("has(request.headers.X_Missing)", False),
    ('request.headers["X-Missing"] == "acme"', False),
    ('"X-Tenant" in ["x-tenant"]', False),  # not a header map: no rewrite
    ('request.headers["X-" + "Tenant"] == "acme"', True),  # a computed key
    ('["X-Tenant"].exists(h, request.headers[h] == "acme")', True),
]


@pytest.mark.parametrize(("expression", "expected"), HEADER_CASES)
def test_header_names_are_case_insensitive(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_header_names_sent_upper_case_are_found_lower_case() -> None:
    request = RequestInfo("GET", "/", "gw", {"X-TENANT": "acme"})

    assert matches('request.headers["X-Tenant"] == "acme"', request)
    assert matches('request.headers["x-tenant"] == "acme"', request)


def test_strings_that_look_like_headers_are_left_alone() -> None:
    assert matches('"request.headers[\\"X-A\\"]" == "request.headers[\\"X-A\\"]"')
    assert matches("r'X-Tenant' == 'X-Tenant'")
