"""Strict JSON for MCP bodies: one reading only, or a refusal (see `mcp/request.py`)."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

import pydantic_core

from trustusbank.errors import ProtocolError

MAX_DEPTH: Final = 64
"""Deepest JSON nesting judged; pydantic_core (the session era's parser) stops near 200."""

_SURROGATE = re.compile(r"[\ud800-\udfff]")


# --- strict JSON ---------------------------------------------------------------------------------


class JsonError(ProtocolError, ValueError):
    """A body the gateway will not judge as JSON."""


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise JsonError(f"duplicate object key {key!r}")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise JsonError(f"non-standard JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError("number out of range")
    return value


def _check_tree(value: Any) -> None:
    """Depth bound and no lone surrogates anywhere (keys included); iterative, so total."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise JsonError("lone surrogate in string")
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise JsonError(f"nesting deeper than {MAX_DEPTH}")
            if isinstance(node, dict):
                stack.extend((key, depth) for key in node)
                stack.extend((item, depth + 1) for item in node.values())
            else:
                stack.extend((item, depth + 1) for item in node)


def _identical(a: Any, b: Any) -> bool:
    """Equal with equal types at every level (so 1 vs 1.0 or True vs 1 differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def loads(raw: bytes) -> Any:
    """Parse `raw` as strict UTF-8 JSON that both SDK parsers read exactly as we do."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise JsonError("UTF-8 byte order mark")
    if json.detect_encoding(raw) != "utf-8":
        raise JsonError("body is not UTF-8")
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise JsonError(str(exc) or type(exc).__name__) from exc
    _check_tree(value)
    # The 2026 entry reads json.loads(bytes); the session era and the client read pydantic_core.
    try:
        stdlib = json.loads(raw)
        jiter = pydantic_core.from_json(raw)
    except (ValueError, RecursionError) as exc:
        raise JsonError("the SDK parsers disagree with this body") from exc
    if not (_identical(value, stdlib) and _identical(value, jiter)):
        raise JsonError("the SDK parsers read this body differently")
    return value
