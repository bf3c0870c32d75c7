"""Alert annotation templates: label and value references, and `if`/`else` on them, as Go renders them.

Prometheus renders annotations with Go's text/template. Our rules use `{{ $labels.<name> }}`,
`{{ $value }}` and `{{ if $labels.<name> }}…{{ else }}…{{ end }}`, so an annotation reads
well whether or not a label exists (a rule whose series differ by runtime); that is all this
renders. A missing label renders as "" and is false, as Prometheus has it. Anything else is
refused when the rule is loaded, rather than rendered differently from Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Union

from trustusbank.errors import ConfigError

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_LABEL_REF = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")
_IF = re.compile(r"if\s+(.+)")
_SUPPORTED = "only {{ $labels.<name> }}, {{ $value }} and {{ if … }}{{ else }}{{ end }} on them are supported"


class TemplateError(ConfigError, ValueError):
    """A template using more of Go's template language than label and value references."""


@dataclass(frozen=True)
class _Ref:
    """`$value`, or `$labels.<name>` (name set)."""

    name: str | None


@dataclass(frozen=True)
class _If:
    condition: _Ref
    then: tuple[_Node, ...]
    otherwise: tuple[_Node, ...]


_Node = Union[str, _Ref, _If]  # noqa: UP007


def _ref(body: str, action: str) -> _Ref:
    if body == "$value":
        return _Ref(None)
    match = _LABEL_REF.fullmatch(body)
    if match is None:
        raise TemplateError(f"{_SUPPORTED}, got {action!r}")
    return _Ref(match.group(1))


def parse(template: str) -> tuple[_Node, ...]:
    """The template as text, references and conditionals; a TemplateError for anything else."""
    # Each open block: (its condition, its nodes so far, the `then` nodes once `else` was seen).
    stack: list[tuple[_Ref | None, list[_Node], list[_Node] | None]] = [(None, [], None)]
    pos = 0
    for match in _ACTION.finditer(template):
        action = match.group(0)
        if action.startswith("{{-") or action.endswith("-}}"):
            raise TemplateError(f"whitespace trimming is not supported: {action!r}")
        _text(template[pos : match.start()], stack[-1][1])
        pos = match.end()
        body = match.group(1)
        if cond := _IF.fullmatch(body):
            stack.append((_ref(cond.group(1).strip(), action), [], None))
        elif body == "else":
            condition, nodes, then = stack[-1]
            if condition is None or then is not None:
                raise TemplateError(f"{{{{ else }}}} outside an {{{{ if }}}} in {template!r}")
            stack[-1] = (condition, [], nodes)
        elif body == "end":
            condition, nodes, then = stack.pop()
            if condition is None:
                raise TemplateError(f"{{{{ end }}}} without an {{{{ if }}}} in {template!r}")
            if then is None:
                block = _If(condition, tuple(nodes), ())
            else:
                block = _If(condition, tuple(then), tuple(nodes))
            stack[-1][1].append(block)
        else:
            stack[-1][1].append(_ref(body, action))
    _text(template[pos:], stack[-1][1])
    if len(stack) != 1:
        raise TemplateError(f"{{{{ if }}}} without its {{{{ end }}}} in {template!r}")
    return tuple(stack[0][1])


def _text(text: str, into: list[_Node]) -> None:
    if "{{" in text or "}}" in text:
        raise TemplateError(f"unbalanced template braces in {text!r}")
    if text:
        into.append(text)


def check(template: str) -> None:
    parse(template)


def render(template: str, labels: Mapping[str, str], value: float) -> str:
    return _render(parse(template), labels, value)


def _render(nodes: tuple[_Node, ...], labels: Mapping[str, str], value: float) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Ref):
            out.append(go_float(value) if node.name is None else labels.get(node.name, ""))
        else:
            taken = _truth(node.condition, labels, value)
            out.append(_render(node.then if taken else node.otherwise, labels, value))
    return "".join(out)


def _truth(ref: _Ref, labels: Mapping[str, str], value: float) -> bool:
    """Go's truth: a non-empty string, a non-zero number (NaN is not zero)."""
    if ref.name is None:
        return value != 0
    return labels.get(ref.name, "") != ""


def go_float(value: float) -> str:
    """A float64 as Go's `%v` prints it: the shortest digits that round-trip, in `%e` form when the
    decimal exponent is below -4 or at least 6 (so 1000000 is "1e+06", as Prometheus shows it)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exp = Decimal(repr(abs(value))).normalize().as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    exponent = len(digits) - 1 + exp
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exp >= 0:
        return sign + digits + "0" * exp
    point = len(digits) + exp
    if point > 0:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}0.{'0' * -point}{digits}"
