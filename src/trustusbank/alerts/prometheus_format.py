"""The Prometheus HTTP API's wire formats: its timestamps, its numbers as strings, its time parameters.

Clients (Grafana, promtool, scripts) parse exactly these shapes, so they follow Prometheus'
own encoder: a sample value is Go's shortest `'f'` spelling (`'e'` below 1e-6 and from 1e21),
an alert's value Go's shortest `'e'` spelling ("1e+00"), a timestamp seconds with millisecond
precision, a time in RFC 3339 in UTC. Input times are Unix seconds or RFC 3339, rounded to the
millisecond as Prometheus does; a step is seconds or a duration ("15s").
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

from trustusbank.errors import ConfigError
from trustusbank.promql.durations import parse_duration


class BadParameter(ConfigError, ValueError):
    """A time or step parameter that is not one."""


def _digits(value: float) -> tuple[str, int]:
    """The shortest digits that round-trip `abs(value)` (as Go's precision -1), and the decimal
    exponent of the first one: 1234.5 is ("12345", 3)."""
    _, digit_tuple, exp = Decimal(repr(abs(value))).normalize().as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    return digits, len(digits) - 1 + exp


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def go_e(value: float) -> str:
    """`strconv.FormatFloat(value, 'e', -1, 64)`: 1 is "1e+00", 1234.5 is "1.2345e+03"."""
    special = _special(value)
    if special is not None:
        return special
    sign = "-" if math.copysign(1, value) < 0 else ""
    if value == 0:
        return f"{sign}0e+00"
    digits, exponent = _digits(value)
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def go_f(value: float) -> str:
    """`strconv.FormatFloat(value, 'f', -1, 64)`: the shortest digits, never an exponent."""
    special = _special(value)
    if special is not None:
        return special
    sign = "-" if math.copysign(1, value) < 0 else ""
    if value == 0:
        return f"{sign}0"
    digits, exponent = _digits(value)
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    if exponent + 1 >= len(digits):
        return sign + digits + "0" * (exponent + 1 - len(digits))
    return f"{sign}{digits[: exponent + 1]}.{digits[exponent + 1 :]}"


def sample_value(value: float) -> str:
    """A query result's value, as Prometheus' `MarshalFloat` writes it."""
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return go_e(value)
    return go_f(value)


def unix(t: float) -> int | float:
    """A result timestamp: seconds with millisecond precision, an integer when whole (as "4", not "4.0")."""
    millis = round(t * 1000)
    return millis // 1000 if millis % 1000 == 0 else millis / 1000


def rfc3339(t: float) -> str:
    """Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction dropped, "Z" for the zone."""
    moment = datetime.fromtimestamp(t, UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def parse_time(raw: str) -> float:
    """Unix seconds (rounded to the millisecond) or an RFC 3339 time with its zone."""
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return round(seconds * 1000) / 1000
        raise BadParameter(f"cannot parse {raw!r} to a valid timestamp")
    if "T" in raw:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return round(moment.timestamp() * 1000) / 1000
    raise BadParameter(f"cannot parse {raw!r} to a valid timestamp")


def parse_step(raw: str) -> float:
    """A step or duration: a number of seconds ("15", "0.5") or a Prometheus duration ("15s")."""
    try:
        seconds = float(raw)
    except ValueError:
        try:
            return parse_duration(raw)
        except ValueError:
            raise BadParameter(f"cannot parse {raw!r} to a valid duration") from None
    if not math.isfinite(seconds):
        raise BadParameter(f"cannot parse {raw!r} to a valid duration")
    return seconds
