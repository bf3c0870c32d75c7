"""Alert annotation templates: the `{{ $labels.<name> }}` and `{{ $value }}` part of Go templates.

Prometheus renders annotations with Go's text/template; our rules use only label and
value references, so that is all this renders. Anything else is refused when the rule
is loaded, rather than rendered differently from Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal

from trustusbank.errors import ConfigError

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_LABEL_REF = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")


class TemplateError(ConfigError, ValueError):
    """A template using more of Go's template language than label and value references."""


def check(template: str) -> None:
    for match in _ACTION.finditer(template):
        if match.group(0).startswith("{{-") or match.group(0).endswith("-}}"):
            raise TemplateError(f"whitespace trimming is not supported: {match.group(0)!r}")
        body = match.group(1)
        if body != "$value" and not _LABEL_REF.fullmatch(body):
            raise TemplateError(
                f"only {{{{ $labels.<name> }}}} and {{{{ $value }}}} are supported, got {match.group(0)!r}"
            )
    rest = _ACTION.sub("", template)
    if "{{" in rest or "}}" in rest:
        raise TemplateError(f"unbalanced template braces in {template!r}")


def render(template: str, labels: Mapping[str, str], value: float) -> str:
    check(template)

    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if body == "$value":
            return go_float(value)
        ref = _LABEL_REF.fullmatch(body)
        assert ref is not None
        return labels.get(ref.group(1), "")

    return _ACTION.sub(one, template)


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
