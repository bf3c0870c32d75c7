"""The shared schema builders and the walk that names unsupported fields, on a made-up kind."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from trustusbank.manifests.kinds import json_schema
from trustusbank.manifests.schema import (
    FieldError,
    array_schema,
    check_spec,
    integer_schema,
    map_schema,
    object_schema,
    spec_of,
    string_schema,
    strings_schema,
    unsupported,
    unsupported_fields,
)

_WHY = "the engine has this field, the toy runtime does not implement it"

_PORT = object_schema(
    {"name": string_schema(1, 15), "port": integer_schema(1, 65535)},
    required=("port",),
    unsupported=("appProtocol",),
    why=_WHY,
)
TOY_SPEC = object_schema(
    {
        "mode": string_schema(enum=("On", "Off")),
        "ports": array_schema(_PORT, max_items=2),
        "hosts": strings_schema(max_length=5),
        "labels": map_schema(string_schema()),
        "retries": unsupported("retries are counted by the sidecar, which the toy runtime has not"),
    },
    required=("mode",),
    unsupported=("tls",),
    why=_WHY,
)


def _toy_checks(spec: Mapping[str, Any]) -> Iterator[FieldError]:
    if spec["mode"] == "Off" and spec.get("ports"):
        yield ("spec", "ports"), "ports are ignored when mode is Off"


def check_toy(body: Mapping[str, Any]) -> list[FieldError]:
    return check_spec(body, TOY_SPEC, _toy_checks)


validate_toy = json_schema(TOY_SPEC, check_toy)


def _toy(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "toy.example/v1", "kind": "Toy", "metadata": {"name": "t"}, "spec": spec}


def test_a_valid_spec_has_no_errors() -> None:
    spec = {"mode": "On", "ports": [{"port": 80}], "hosts": ["a.b"], "labels": {"app": "x"}}
    assert validate_toy(_toy(spec)) == []


def test_unknown_fields_are_refused_with_their_path() -> None:
    errors = validate_toy(_toy({"mode": "On", "ports": [{"port": 80, "prot": 1}], "modes": "x"}))
    assert sorted(errors) == [
        (("spec", "modes"), "unknown field (did you mean 'mode'?)"),
        (("spec", "ports", 0, "prot"), "unknown field (did you mean 'port'?)"),
    ]


def test_required_fields_are_enforced() -> None:
    errors = validate_toy(_toy({"ports": [{"name": "http"}]}))
    assert sorted(errors) == [
        (("spec",), "'mode' is a required property"),
        (("spec", "ports", 0), "'port' is a required property"),
    ]


def test_limits_of_the_builders_are_enforced() -> None:
    spec = {"mode": "Sideways", "ports": [{"port": 0}, {"port": 1}, {"port": 2}], "hosts": ["toolong"]}
    messages = {path: text for path, text in validate_toy(_toy(spec))}
    assert set(messages) == {
        ("spec", "mode"),
        ("spec", "ports"),
        ("spec", "ports", 0, "port"),
        ("spec", "hosts", 0),
    }
    assert "is not one of ['On', 'Off']" in messages[("spec", "mode")]
    assert "is too long" in messages[("spec", "ports")]
    assert "less than the minimum of 1" in messages[("spec", "ports", 0, "port")]
    assert "is too long" in messages[("spec", "hosts", 0)]


def test_an_unsupported_field_is_named_with_its_path_and_why() -> None:
    spec = {
        "mode": "On",
        "tls": {"anything": "at all"},
        "ports": [{"port": 80}, {"port": 443, "appProtocol": "https"}],
        "retries": 3,
    }
    assert validate_toy(_toy(spec)) == [
        (("spec", "tls"), f"not supported: {_WHY}"),
        (("spec", "ports", 1, "appProtocol"), f"not supported: {_WHY}"),
        (
            ("spec", "retries"),
            "not supported: retries are counted by the sidecar, which the toy runtime has not",
        ),
    ]


def test_the_walk_leaves_unknown_fields_to_the_schema() -> None:
    body = {"spec": {"mode": "On", "tlss": {}, "ports": [{"port": 1, "appProtocolz": "x"}]}}
    assert list(unsupported_fields(TOY_SPEC, body)) == []


def test_checks_run_on_the_spec_after_the_unsupported_fields() -> None:
    body = _toy({"mode": "Off", "ports": [{"port": 80}], "tls": {}})
    assert check_toy(body) == [
        (("spec", "tls"), f"not supported: {_WHY}"),
        (("spec", "ports"), "ports are ignored when mode is Off"),
    ]


@pytest.mark.parametrize("spec", [None, "text", ["mode"]])
def test_a_missing_or_malformed_spec_is_required(spec: Any) -> None:
    body = {"kind": "Toy"} if spec is None else _toy(spec)
    assert spec_of(body) is None
    assert check_toy(body) == [(("spec",), "spec is required")]


def test_unsupported_fields_need_a_why() -> None:
    with pytest.raises(ValueError, match="need a why"):
        object_schema({}, unsupported=("tls",))


def test_builders_leave_out_what_is_not_asked_for() -> None:
    assert string_schema() == {"type": "string"}
    assert strings_schema() == {"type": "array", "items": {"type": "string"}}
    assert integer_schema() == {"type": "integer"}
    assert array_schema(string_schema(), 1) == {"type": "array", "items": {"type": "string"}, "minItems": 1}
    assert object_schema({}) == {"type": "object", "properties": {}, "additionalProperties": False}
