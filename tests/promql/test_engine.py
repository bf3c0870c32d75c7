"""The PromQL subset's edges: what parses, what is refused, and templates rendered as Prometheus does."""

from __future__ import annotations

import re

import pytest

from trustusbank.promql.engine import Engine, Sample, expand, label_replace
from trustusbank.promql.parser import PromQLError, parse
from trustusbank.promql.series import STALE, Series, SeriesStore, labels_of
from trustusbank.promql.templates import TemplateError, go_float, render


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("x + 1", "arithmetic operator '+'"),
        ("rate(x)", "rate() takes (matrix)"),
        ("x == on(a) y", "modifier 'on'"),
        ("x unless on(a) group_left y", "modifier 'group_left'"),
        ("x or bool y", "modifier 'bool'"),
        ("last_over_time(x)", "last_over_time() takes (matrix)"),
        ('{a=""}', "does not match the empty value"),
        ("x > y", "between two vectors"),
        ("1 > 2", "between two numbers"),
        ('x{a=~"("}', "invalid regex"),
        ("x @ 100", "@ modifier"),
        ("sum(x) by (a) by (b)", "unexpected token"),
    ],
)
def test_refused(expr: str, message: str) -> None:
    with pytest.raises(PromQLError) as caught:
        parse(expr)
    assert message in str(caught.value)


def test_staleness_ends_a_series_at_once_and_lookback_bounds_it() -> None:
    store = SeriesStore()
    labels = labels_of({"__name__": "up", "job": "ztunnel"})
    store.append(labels, 0.0, 1.0)
    engine = Engine(store)
    assert engine.vector(parse("up"), 299.0) == [Sample(labels, 1.0)]
    assert engine.vector(parse("up"), 300.0) == []  # left-open lookback: (0, 300]
    store.mark_stale(labels, 10.0)
    assert engine.vector(parse("up"), 20.0) == []


def test_label_replace_follows_go_expansion() -> None:
    sample = Sample(labels_of({"source_principal": "cluster.local/ns/a/sa/b"}), 1.0)
    out = label_replace(
        sample, "offender", "$1-$2", "source_principal", "(?:spiffe://)?[^/]+/ns/([^/]+)/sa/(.+)"
    )
    assert dict(out.labels)["offender"] == "a-b"
    assert label_replace(sample, "x", "$1", "source_principal", "nomatch") == sample
    match = re.fullmatch(r"(?P<ns>a)(b)", "ab")
    assert match is not None
    assert expand("${ns}$2$$ $1x $9", match) == "ab$  "


def test_templates() -> None:
    assert render("{{ $labels.a }} saw {{$value}}", {"a": "<x>"}, 1e6) == "<x> saw 1e+06"
    assert [go_float(v) for v in (2.5, 123456.0, 0.0001, 1.5e-7)] == ["2.5", "123456", "0.0001", "1.5e-07"]
    with pytest.raises(TemplateError):
        render("{{ humanize $value }}", {}, 1)


IF_ELSE = "refused{{ if $labels.reason }}: {{ $labels.reason }}{{ else }} by a policy{{ end }}."


@pytest.mark.parametrize(
    ("template", "labels", "value", "expected"),
    [
        (IF_ELSE, {"reason": "explicitly denied"}, 1, "refused: explicitly denied."),
        (IF_ELSE, {}, 1, "refused by a policy."),  # a missing label is "" and false, as in Prometheus
        (IF_ELSE, {"reason": ""}, 1, "refused by a policy."),
        ("x{{ if $labels.o }} ({{ $labels.o }}){{ end }}", {}, 1, "x"),
        ("{{ if $labels.a }}{{ else }}no a{{ end }}", {"a": "1"}, 1, ""),
        ("{{ if $value }}{{ $value }}{{ else }}zero{{ end }}", {}, 0, "zero"),
        ("{{if $labels.a}}a{{ if $labels.b }}b{{ else }}-{{ end }}{{end}}!", {"a": "1"}, 1, "a-!"),
    ],
)
def test_template_conditionals(template: str, labels: dict[str, str], value: float, expected: str) -> None:
    assert render(template, labels, value) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ if $labels.a }}open", "without its {{ end }}"),
        ("{{ end }}", "without an {{ if }}"),
        ("{{ else }}", "outside an {{ if }}"),
        ("{{ if $labels.a }}{{ else }}{{ else }}{{ end }}", "outside an {{ if }}"),
        ('{{ if eq $labels.a "x" }}{{ end }}', "only {{ $labels.<name> }}"),
        ("{{ else if $labels.a }}", "only {{ $labels.<name> }}"),
        ("{{ range $labels }}{{ end }}", "only {{ $labels.<name> }}"),
        ("{{- if $labels.a }}{{ end }}", "whitespace trimming"),
        ("a }} b", "unbalanced"),
    ],
)
def test_templates_beyond_the_subset_are_refused(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, {"a": "x"}, 1)
    assert message in str(caught.value)


def test_last_increase_sees_growth_restarts_and_birth_but_not_a_pruned_start() -> None:
    series = Series(labels_of({"__name__": "c"}))
    for t, v in [(1.0, 1.0), (2.0, 1.0), (3.0, 3.0), (4.0, 3.0)]:
        series.add(t, v)
    assert series.last_increase() == 3.0
    series.add(5.0, STALE)
    series.add(6.0, 1.0)  # a restarted node proxy counted again
    assert series.last_increase() == 6.0
    born = Series(labels_of({"__name__": "c"}))
    born.add(7.0, 2.0)
    assert born.last_increase() == 7.0
    born.add(8.0, 2.0)
    born.prune(7.5)
    assert born.last_increase() is None
