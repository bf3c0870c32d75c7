"""What a rule can read of a variable: the decision cache's key must hold all of it."""

from __future__ import annotations

import pytest

from trustusbank.mesh.authz.cel_reads import fields_read, headers_read


@pytest.mark.parametrize(
    ("expression", "root", "fields"),
    [
        ('source.identity.serviceAccount == "support-bot"', "source", {"identity"}),
        (
            'source.identity.namespace == "a" && source.address == "10.0.0.1"',
            "source",
            {"identity", "address"},
        ),
        ('has(source.address) || mcp.tool.name == "x"', "source", {"address"}),
        ('mcp.tool.name == "x"', "source", set()),
        ('request.headers["x-tenant"] == "a" && request.path == "/"', "request", {"headers", "path"}),
        ('default(request.headers.tenant, "none") == "a"', "request", {"headers"}),
        ('"source.address" == source.identity.namespace', "source", {"identity"}),  # a string is not a read
        ('x.source.address == "a"', "source", set()),  # a field named `source`, not the variable
        ('request.method == "POST" // request is read here', "request", {"method"}),
    ],
)
def test_fields_written_as_root_dot_field_are_counted(expression: str, root: str, fields: set[str]) -> None:
    assert fields_read([expression], root) == fields


@pytest.mark.parametrize(
    "expression",
    [
        'request.exists(k, k == "path")',  # a macro over the whole map
        "size(request) > 2",  # the bare variable as an argument
        'request["path"] == "/"',  # a computed field
        'toJson(request).contains("x")',
        '["a"].exists(request, request == "a")',  # a comprehension variable of the same name
        'request?.path == "/"',
        "request",
    ],
)
def test_any_other_use_may_read_everything(expression: str) -> None:
    assert fields_read([expression], "request") is None


def test_fields_of_several_rules_add_up_and_one_unsure_rule_makes_all() -> None:
    assert fields_read(['request.path == "/"', 'request.method == "GET"'], "request") == {"path", "method"}
    assert fields_read(['request.path == "/"', "size(request) > 0"], "request") is None


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ('request.headers["X-Tenant"] == "bank"', {"x-tenant"}),
        ("request.headers.x_tenant == 'bank'", {"x_tenant"}),
        ('"X-Tenant" in request.headers', {"x-tenant"}),
        ('has(request.headers.tenant) && request.headers["b"] == "c"', {"tenant", "b"}),
        ('default(request.headers["x-tenant"], "none") == "none"', {"x-tenant"}),
        ('request.path == "/"', set()),
    ],
)
def test_headers_read_by_a_plain_literal_name_are_named(expression: str, names: set[str]) -> None:
    assert headers_read([expression]) == names


@pytest.mark.parametrize(
    "expression",
    [
        "size(request.headers) > 1",
        'request.headers.exists(k, k.startsWith("x-"))',
        'request.headers[name] == "a"',
        'request.headers["x-" + "tenant"] == "a"',
        r'request.headers["x\x2dtenant"] == "a"',  # an escape: not plainly the name it looks like
        'request.headers[r"x-tenant"] == "a"',
        "name in request.headers",
        '"x" in request.headers && toJson(request).contains("a")',  # the request used whole
        'request.headers == {"a": "b"}',
    ],
)
def test_any_other_header_read_may_read_them_all(expression: str) -> None:
    assert headers_read([expression]) is None
