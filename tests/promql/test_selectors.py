"""Selectors are found wherever an expression nests them, and a series nobody exposes is named."""

from __future__ import annotations

import pytest

from trustusbank.promql.parser import parse
from trustusbank.promql.selectors import UnknownSeries, selectors, unknown_series

EXPOSED = {"requests_total", "latency_seconds_bucket", "latency_seconds_count", "up"}


@pytest.mark.parametrize(
    ("query", "metrics"),
    [
        ("up", ["up"]),
        ("increase(requests_total[5m])", ["requests_total"]),
        ('sum by (a) (requests_total{a="x"} offset 5m) > 0', ["requests_total"]),
        (
            "(requests_total unless up offset 5m) or increase(latency_seconds_count[1m])",
            ["requests_total", "up", "latency_seconds_count"],
        ),
        ('label_replace(max(up), "b", "$1", "a", "(.*)")', ["up"]),
        ("3 < up", ["up"]),
        ("7", []),
    ],
)
def test_selectors_are_found_at_any_depth(query: str, metrics: list[str]) -> None:
    assert [s.metric for s in selectors(parse(query))] == metrics


def test_known_series_pass_and_unknown_ones_are_named_with_their_query() -> None:
    queries = [
        ("Fine", 'sum(increase(requests_total{code="500"}[5m])) > 0 and up'),
        ("Typo", 'increase(request_total{code="500"}[5m]) > 0'),
        ("Unsuffixed", "rate(latency_seconds[5m])"),
    ]
    assert unknown_series(queries, EXPOSED) == [
        UnknownSeries(
            "Typo",
            'request_total{code="500"}',
            "metric 'request_total' is exposed by no scraped component; did you mean 'requests_total'?",
        ),
        UnknownSeries(
            "Unsuffixed",
            "latency_seconds",
            "metric 'latency_seconds' is exposed by no scraped component; "
            "did you mean 'latency_seconds_count'?",
        ),
    ]
    assert str(unknown_series(queries[1:2], EXPOSED)[0]).startswith('Typo: request_total{code="500"}: metric')


def test_name_regexes_must_match_an_exposed_name() -> None:
    assert unknown_series([("Any latency", '{__name__=~"latency_.*"}')], EXPOSED) == []
    [problem] = unknown_series([("None", '{__name__=~"memory_.*"}')], EXPOSED)
    assert problem.message == "no exposed metric name matches"


def test_a_selector_without_a_name_and_an_unparsable_query_are_problems_not_passes() -> None:
    found = unknown_series([("Nameless", '{job="x"}'), ("Arithmetic", "up * 2")], EXPOSED)
    assert [(p.query, p.selector) for p in found] == [("Nameless", '{job="x"}'), ("Arithmetic", "")]
    assert found[0].message.startswith("selects no metric by name")
    assert found[1].message.startswith("does not parse: ")


def test_nothing_exposed_means_every_selector_is_unknown() -> None:
    assert [p.selector for p in unknown_series([("A", "up or requests_total")], set())] == [
        "up",
        "requests_total",
    ]
