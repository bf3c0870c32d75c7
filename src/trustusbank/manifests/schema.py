"""Small builders for the strict JSON Schemas of custom resources (Istio, agentgateway, kagent).

Every custom kind is declared the same way: objects that refuse unknown fields (so a
misspelt field is an error, as a cluster's structural schema makes it), and fields the
real engine has but the embedded runtime cannot honour marked as unsupported, so they
are a loud error rather than a silent skip.
"""

from __future__ import annotations

from typing import Any

# The schema keyword that marks a field as real but not implemented here; its value says why.
UNSUPPORTED = "x-unsupported"


def unsupported(why: str) -> dict[str, Any]:
    return {UNSUPPORTED: why}


def object_schema(
    properties: dict[str, Any],
    required: tuple[str, ...] = (),
    unsupported_fields: tuple[str, ...] = (),
    *,
    why: str,
) -> dict[str, Any]:
    props = {**properties, **{name: unsupported(why) for name in unsupported_fields}}
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
    min_length: int = 0, max_length: int | None = None, enum: tuple[str, ...] = ()
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if enum:
        schema["enum"] = list(enum)
    return schema
