"""Arithmetic between numbers: PromQL's precedence, and Go's float64 answers where Python would raise.

promtool agrees on precedence, associativity and `%` (tests/alerts/promtool/scalar-arithmetic.test.yaml);
the IEEE edges below are Go's documented `math.Mod`/`math.Pow` special cases.
"""

from __future__ import annotations

import math

import pytest

from trustusbank.promql.engine import Engine, arithmetic
from trustusbank.promql.parser import PromQLError, parse, value_type
from trustusbank.promql.series import SeriesStore, labels_of


def number(text: str) -> float:
    result = Engine(SeriesStore()).eval(parse(text), 0.0)
    assert isinstance(result, float)
    return result


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1+1", 2.0),  # Grafana's Prometheus data source health check
        ("1 + 2 * 3 - 4 / 8", 6.5),
        ("2 ^ 3 ^ 2", 512.0),  # right-associative
        ("-2 ^ 2", -4.0),  # the sign binds looser than ^
        ("2 ^ -1", 0.5),
        ("(1 + 2) * 3", 9.0),
        ("10 - 4 - 3", 3.0),  # left-associative
        ("-(-5)", 5.0),
        ("+5", 5.0),
        ("7 % -3", 1.0),  # the dividend's sign, as Go's math.Mod
        ("-7 % 3", -1.0),
    ],
)
def test_numbers_evaluate_with_promql_precedence(expr: str, value: float) -> None:
    assert value_type(parse(expr)) == "scalar"
    assert number(expr) == value


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("/", 1.0, 0.0, math.inf),
        ("/", -1.0, 0.0, -math.inf),
        ("/", 1.0, -0.0, -math.inf),
        ("/", 0.0, 0.0, math.nan),
        ("%", 1.0, 0.0, math.nan),
        ("%", math.inf, 2.0, math.nan),
        ("%", 5.0, math.inf, 5.0),
        ("^", 0.0, -1.0, math.inf),
        ("^", -0.0, -1.0, -math.inf),  # an odd negative power keeps the zero's sign
        ("^", -0.0, -2.0, math.inf),
        ("^", -8.0, 1 / 3, math.nan),
        ("^", 10.0, 400.0, math.inf),
        ("^", -10.0, 401.0, -math.inf),
        ("^", math.nan, 0.0, 1.0),
        ("*", math.inf, 0.0, math.nan),
    ],
)
def test_float_edges_follow_go_never_raise(op: str, a: float, b: float, expected: float) -> None:
    got = arithmetic(op, a, b)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected
        assert math.copysign(1, got) == math.copysign(1, expected)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("x * 2", "arithmetic operator '*' is not supported between vector and scalar"),
        ("2 - x", "arithmetic operator '-' is not supported between scalar and vector"),
        ("-x", "arithmetic operator '-' is not supported on a vector"),
        ("1 +", "expected an expression"),
        ("1 + 1 > 1", "between two numbers"),
    ],
)
def test_arithmetic_on_series_is_still_refused(expr: str, message: str) -> None:
    with pytest.raises(PromQLError) as caught:
        parse(expr)
    assert message in str(caught.value)


def test_a_computed_threshold_filters_a_vector() -> None:
    store = SeriesStore()
    for name, value in (("a", 3.0), ("b", 7.0)):
        store.append(labels_of({"__name__": "g", "case": name}), 1.0, value)
    [kept] = Engine(store).vector(parse("g > 2 * 3"), 1.0)
    assert dict(kept.labels)["case"] == "b"
