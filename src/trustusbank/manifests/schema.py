"""Small builders for the strict JSON Schemas of custom resources (Istio, agentgateway, kagent,
Prometheus Operator), and what every custom kind's checks share.

Every custom kind is declared the same way: objects that refuse unknown fields (so a
misspelt field is an error, as a cluster's structural schema makes it), and fields the
real engine has but the embedded runtime cannot honour marked as unsupported, so they
are a loud error rather than a silent skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from trustusbank.manifests.manifest import JsonPath

# One problem in a document: the path from the document root, and what is wrong there.
FieldError = tuple[JsonPath, str]
# How a kind's raw document is checked; an empty list means it is accepted.
Validator = Callable[[dict[str, Any]], list[FieldError]]

# The schema keyword that marks a field as real but not implemented here; its value says why.
UNSUPPORTED = "x-unsupported"


def unsupported(why: str) -> dict[str, Any]:
    return {UNSUPPORTED: why}


def object_schema(
    properties: dict[str, Any],
    required: tuple[str, ...] = (),
    unsupported: tuple[str, ...] = (),
    *,
    why: str = "",
) -> dict[str, Any]:
    """An object refusing unknown fields; each of `unsupported` is refused with `why`."""
    if unsupported and not why:
        raise ValueError("unsupported fields need a why: it is all the user is told")
    props = {**properties, **{name: {UNSUPPORTED: why} for name in unsupported}}
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def array_schema(items: dict[str, Any], min_items: int = 0, max_items: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items}
    if min_items:
        schema["minItems"] = min_items
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def string_schema(
    min_length: int = 0,
    max_length: int | None = None,
    enum: tuple[str, ...] = (),
    *,
    pattern: str | None = None,
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if enum:
        schema["enum"] = list(enum)
    if pattern is not None:
        schema["pattern"] = pattern
    return schema


def strings_schema(max_items: int | None = None, max_length: int | None = None) -> dict[str, Any]:
    """A list of strings, the commonest field shape in these CRDs."""
    return array_schema(string_schema(max_length=max_length), max_items=max_items)


def map_schema(values: dict[str, Any]) -> dict[str, Any]:
    """A map with free keys (labels, annotations, matchLabels, portLevelMtls), each value `values`."""
    return {"type": "object", "additionalProperties": values}


def integer_schema(minimum: int | None = None, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def spec_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = body.get("spec")
    return spec if isinstance(spec, Mapping) else None


def unsupported_fields(spec_schema: Mapping[str, Any], body: Mapping[str, Any]) -> Iterator[FieldError]:
    """Every field present in `body.spec` that the schema marks as real but not implemented here."""
    yield from _walk(spec_schema, body.get("spec"), ("spec",))


def _walk(schema: Mapping[str, Any], value: Any, path: JsonPath) -> Iterator[FieldError]:
    if UNSUPPORTED in schema:
        yield path, f"not supported: {schema[UNSUPPORTED]}"
    elif isinstance(value, Mapping):
        properties = schema.get("properties") or {}
        for key, item in value.items():
            if key in properties:
                yield from _walk(properties[key], item, (*path, key))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _walk(schema["items"], item, (*path, index))


def check_spec(
    body: Mapping[str, Any],
    spec_schema: Mapping[str, Any],
    check: Callable[[Mapping[str, Any]], Iterable[FieldError]],
) -> list[FieldError]:
    """A kind whose `spec` is required: its unsupported fields, then `check` on the spec.

    Runs after the schema accepted the document, so `check` may trust the spec's types.
    """
    spec = spec_of(body)
    if spec is None:
        return [(("spec",), "spec is required")]
    return [*unsupported_fields(spec_schema, body), *check(spec)]
