"""What a rule can read of a variable: the decision cache's key must hold all of it."""

from __future__ import annotations

import pytest

from trustusbank.mesh.authz.cel_reads import fields_read


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
