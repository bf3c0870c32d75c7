"""Typed reads from parsed JSON that fail with the path of the offending field.

Requests we receive fail with `WireError` (the caller sent a bad body) and
replies we receive fail with `ModelError` (the provider sent a bad answer);
the same reader serves both by taking the error class.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

_MISSING: Any = object()


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class Fields:
    """A JSON object at `path`; every accessor names `path.key` when the value is wrong."""

    def __init__(self, raw: Any, path: str, error: type[Exception]) -> None:
        if not isinstance(raw, dict):
            raise error(f"{path or 'body'}: expected a JSON object, got {_kind(raw)}")
        self.raw: dict[str, Any] = raw
        self.path = path
        self.error = error

    def where(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> NoReturn:
        raise self.error(f"{self.where(key)}: {problem}")

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def get(self, key: str) -> Any:
        return self.raw.get(key)

    def _typed(self, key: str, kinds: tuple[type, ...], label: str, default: Any) -> Any:
        value = self.raw.get(key)
        if value is None:
            if default is _MISSING:
                self.fail(key, "required")
            return default
        # bool is an int in Python but not in JSON
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(key, f"expected {label}, got {_kind(value)}")
        return value

    def text(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, (str,), "a string", default)

    def integer(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, (int,), "an integer", default)

    def number(self, key: str, default: Any = _MISSING) -> Any:
        value = self._typed(key, (int, float), "a number", default)
        return float(value) if value is not None else None

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, (bool,), "a boolean", default)

    def array(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, (list,), "an array", default)

    def mapping(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, (dict,), "an object", default)

    def obj(self, key: str) -> Fields:
        return Fields(self.mapping(key), self.where(key), self.error)

    def items(self, key: str, default: Any = _MISSING) -> list[Fields]:
        """The objects of the array at `key`, each reading as `key[i]`."""
        values = self.array(key, default)
        return [Fields(v, f"{self.where(key)}[{i}]", self.error) for i, v in enumerate(values or ())]


def json_object(text: str, path: str, error: type[Exception]) -> dict[str, Any]:
    """Parse a JSON-encoded object (tool arguments travel as a string on the OpenAI wire)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise error(f"{path}: not valid JSON ({exc}): {text[:200]!r}") from exc
    if not isinstance(value, dict):
        raise error(f"{path}: expected a JSON object, got {_kind(value)}")
    return value


def text_of(value: Any, path: str, error: type[Exception]) -> str:
    """Content given as a string or a list of text parts/blocks, as one string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise error(f"{path}: expected a string or a list of text parts, got {_kind(value)}")
    texts = []
    for i, raw in enumerate(value):
        part = Fields(raw, f"{path}[{i}]", error)
        if part.text("type") != "text":
            part.fail("type", f"only text parts are supported, got {part.get('type')!r}")
        texts.append(part.text("text"))
    return "\n".join(texts)
