"""The Prometheus Operator's `PrometheusRule` (monitoring.coreos.com/v1): schema, checks, typed view.

The same object a cluster's Prometheus loads is what the embedded alert evaluator
runs, so the checks go one step further than the CRD: every `expr` must parse in
the PromQL subset the evaluator implements, and every annotation template must use
only what it renders. A rule it could not honour is a `manifests check` error, not
an alert that silently never fires.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from trustusbank.manifests.manifest import JsonPath
from trustusbank.manifests.schema import (
    FieldError,
    array_schema,
    map_schema,
    object_schema,
    string_schema,
)
from trustusbank.promql import templates
from trustusbank.promql.ast import Expr
from trustusbank.promql.durations import parse_duration
from trustusbank.promql.parser import PromQLError, parse

if TYPE_CHECKING:
    from trustusbank.manifests.manifest import Manifest

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PrometheusRule"
DEFAULT_INTERVAL = 60.0  # Prometheus' global evaluation_interval default

# The operator CRD's duration pattern (units largest first, each at most once).
_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"

_RULE = object_schema(
    {
        "alert": string_schema(1),
        "record": string_schema(1),
        "expr": string_schema(1),
        "for": string_schema(pattern=_DURATION),
        "labels": map_schema(string_schema()),
        "annotations": map_schema(string_schema()),
    },
    required=("expr",),
)
_GROUP = object_schema(
    {"name": string_schema(1), "interval": string_schema(pattern=_DURATION), "rules": array_schema(_RULE)},
    required=("name",),
)
PROMETHEUS_RULE_SPEC: dict[str, Any] = object_schema({"groups": array_schema(_GROUP)})

_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METRIC_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_RESERVED_LABELS = {"__name__", "alertname"}


def check_prometheus_rule(body: Mapping[str, Any]) -> list[FieldError]:
    """What Prometheus refuses when it loads the rules, plus what the embedded evaluator cannot run."""
    return list(_problems(body))


def _problems(body: Mapping[str, Any]) -> Iterator[FieldError]:
    names: dict[str, int] = {}
    for g, group in enumerate((body.get("spec") or {}).get("groups") or []):
        path: JsonPath = ("spec", "groups", g)
        if group["name"] in names:
            yield (*path, "name"), f"group name {group['name']!r} repeats groups[{names[group['name']]}]"
        names.setdefault(group["name"], g)
        if group.get("interval") is not None:
            yield from _duration((*path, "interval"), group["interval"], positive=True)
        for r, rule in enumerate(group.get("rules") or []):
            yield from _rule_problems((*path, "rules", r), rule)


def _duration(path: JsonPath, text: str, *, positive: bool = False) -> Iterator[FieldError]:
    try:
        seconds = parse_duration(text) if text != "0" else 0.0
    except ValueError as exc:
        yield path, str(exc)
        return
    if positive and seconds <= 0:
        yield path, "must be greater than zero"


def _rule_problems(path: JsonPath, rule: Mapping[str, Any]) -> Iterator[FieldError]:
    alert, record = rule.get("alert"), rule.get("record")
    if (alert is None) == (record is None):
        yield path, "a rule has exactly one of alert or record"
    if record is not None:
        if not _METRIC_NAME.fullmatch(record):
            yield (*path, "record"), f"{record!r} is not a valid metric name"
        for key in ("for", "annotations"):
            if key in rule:
                yield (*path, key), f"{key} is only for alerting rules"
    try:
        parse(rule["expr"])
    except PromQLError as exc:
        yield (*path, "expr"), f"PromQL the embedded evaluator cannot run: {exc}"
    if "for" in rule:
        yield from _duration((*path, "for"), rule["for"])
    for name, value in (rule.get("labels") or {}).items():
        if not _LABEL_NAME.fullmatch(name) or name in _RESERVED_LABELS:
            yield (*path, "labels", name), f"{name!r} is not a label name a rule may set"
        if "{{" in value:
            yield (*path, "labels", name), "templated label values are not supported"
    for name, value in (rule.get("annotations") or {}).items():
        if not _LABEL_NAME.fullmatch(name):
            yield (*path, "annotations", name), f"{name!r} is not a valid annotation name"
        try:
            templates.check(value)
        except templates.TemplateError as exc:
            yield (*path, "annotations", name), str(exc)


@dataclass(frozen=True)
class Rule:
    expr_text: str
    expr: Expr
    alert: str | None = None
    record: str | None = None
    for_seconds: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.alert or self.record or ""


@dataclass(frozen=True)
class RuleGroup:
    name: str
    interval: float | None
    rules: list[Rule]
    source: str = ""  # "<namespace>/<PrometheusRule name>"


@dataclass(frozen=True)
class PrometheusRule:
    name: str
    namespace: str | None
    groups: list[RuleGroup]
    body: dict[str, Any]

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> PrometheusRule:
        return cls.from_body(manifest.body, manifest.name, manifest.namespace)

    @classmethod
    def from_body(cls, body: Mapping[str, Any], name: str, namespace: str | None) -> PrometheusRule:
        source = f"{namespace}/{name}"
        groups = [
            RuleGroup(
                group["name"],
                parse_duration(group["interval"]) if group.get("interval") not in (None, "0") else None,
                [_rule(rule) for rule in group.get("rules") or []],
                source,
            )
            for group in (body.get("spec") or {}).get("groups") or []
        ]
        return cls(name, namespace, groups, dict(body))

    def rule_file(self) -> dict[str, Any]:
        """The spec as a plain Prometheus rule file (what `promtool` and `rule_files:` read)."""
        return {"groups": list((self.body.get("spec") or {}).get("groups") or [])}


def _rule(raw: Mapping[str, Any]) -> Rule:
    duration = raw.get("for")
    return Rule(
        expr_text=raw["expr"],
        expr=parse(raw["expr"]),
        alert=raw.get("alert"),
        record=raw.get("record"),
        for_seconds=parse_duration(duration) if duration not in (None, "0") else 0.0,
        labels=dict(raw.get("labels") or {}),
        annotations=dict(raw.get("annotations") or {}),
    )


def rules_in_files(files: list[Path]) -> list[RuleGroup]:
    """The rule groups of every PrometheusRule in these YAML files, other kinds ignored.

    What the Prometheus Operator does with the objects the API server admitted: the bundle
    was validated whole when it was applied, so only the rules are parsed and checked here
    (a full bundle check costs the evaluator seconds of CPU at every change). A rule that
    does not check raises ValueError, so the caller keeps the rules it had.
    """
    groups: list[RuleGroup] = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(doc, dict) or (doc.get("apiVersion"), doc.get("kind")) != (API_VERSION, KIND):
                continue
            meta = doc.get("metadata") or {}
            errors = check_prometheus_rule(doc)
            if errors:
                found = "; ".join(f"{'.'.join(map(str, where))}: {text}" for where, text in errors)
                raise ValueError(f"{path}: PrometheusRule {meta.get('name')}: {found}")
            groups += PrometheusRule.from_body(doc, str(meta.get("name", "")), meta.get("namespace")).groups
    return groups
