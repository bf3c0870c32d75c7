"""The DORA evidence dashboard as Grafana loads it: JSON in a ConfigMap its sidecar picks up.

The panels are `telemetry.dashboard`'s; this module only says them in Grafana's words (panel
plugins, the 24-column grid, targets, data sources by the uids `values.py` provisions) and
wraps the JSON in the labelled ConfigMap kube-prometheus-stack's Grafana sidecar loads from
any namespace. The write-up's receipt is `/d/dora-evidence` on port 18001.
"""

from __future__ import annotations

import json
from typing import Any

from trustusbank.k8s.values import (
    DASHBOARD_LABEL,
    LOKI_UID,
    OBSERVABILITY_NS,
    PROMETHEUS_UID,
)
from trustusbank.telemetry.dashboard import PANELS, TITLE, VARIABLES, Panel, Query, Unit, Variable

UID = "dora-evidence"
CONFIG_MAP = "dora-evidence-dashboard"
FILE = "dora-evidence.json"
# Grafana 12.2's dashboard schema (migration V42); a newer Grafana migrates it forward on load.
SCHEMA_VERSION = 42
COLUMNS = 24  # the grid's width
REFRESH = "30s"
TIME_RANGE = {"from": "now-1h", "to": "now"}
WHY = "Grafana's DORA evidence dashboard (/d/dora-evidence), which the embedded runtime has no Grafana for"

# Rows top to bottom: (height, ((panel id, width), ...)). Every panel once; widths fill the row.
LAYOUT: tuple[tuple[int, tuple[tuple[int, int], ...]], ...] = (
    (5, ((1, 6), (2, 6), (3, 12))),
    (8, ((4, 12), (5, 12))),
    (8, ((6, 12), (7, 12))),
    (6, ((8, 24),)),
    (12, ((9, 24),)),
)

_UNITS: dict[Unit, str] = {"count": "short", "none": "none"}
_SOURCES = {
    "promql": {"type": "prometheus", "uid": PROMETHEUS_UID},
    "logql": {"type": "loki", "uid": LOKI_UID},
}


def grid() -> dict[int, dict[str, int]]:
    """Each panel's place: x, y, width, height on the 24-column grid."""
    places: dict[int, dict[str, int]] = {}
    y = 0
    for height, row in LAYOUT:
        x = 0
        for panel_id, width in row:
            if panel_id in places:
                raise ValueError(f"panel {panel_id} is laid out twice")
            places[panel_id] = {"x": x, "y": y, "w": width, "h": height}
            x += width
        if x > COLUMNS:
            raise ValueError(f"the row at y={y} is {x} columns wide; the grid has {COLUMNS}")
        y += height
    missing = {p.id for p in PANELS} - places.keys()
    if missing:
        raise ValueError(f"panels {sorted(missing)} have no place in the layout")
    return places


def _target(query: Query, ref: str) -> dict[str, Any]:
    source = _SOURCES[query.language]
    if query.language == "logql":
        return {"refId": ref, "datasource": source, "expr": query.expr, "queryType": "range"}
    return {
        "refId": ref,
        "datasource": source,
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "instant": query.instant,
        "range": not query.instant,
        "format": "table" if query.instant else "time_series",
    }


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "logs":
        return {
            "showTime": True,
            "wrapLogMessage": True,
            "enableLogDetails": True,
            "sortOrder": "Descending",
            "dedupStrategy": "none",
        }
    if panel.kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value_and_name",
        }
    if panel.kind == "table":
        return {"showHeader": True, "cellHeight": "sm"}
    return {
        "legend": {"showLegend": True, "displayMode": "table", "placement": "right", "calcs": ["max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def _panel(panel: Panel, place: dict[str, int]) -> dict[str, Any]:
    [language] = {q.language for q in panel.queries}  # one data source per panel
    defaults: dict[str, Any] = {"unit": _UNITS[panel.unit]}
    if panel.kind == "stat":
        defaults["noValue"] = "0"  # no series means none counted, not unknown
    out: dict[str, Any] = {
        "id": panel.id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": _SOURCES[language],
        "gridPos": place,
        "targets": [_target(q, chr(ord("A") + n)) for n, q in enumerate(panel.queries)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": _options(panel),
    }
    if panel.kind == "table":
        # The instant query's timestamp and value say nothing here: the labels are the record.
        hidden = {"Time": True, "Value": True}
        out["transformations"] = [{"id": "organize", "options": {"excludeByName": hidden}}]
    return out


def _variable(variable: Variable) -> dict[str, Any]:
    query = f"label_values({variable.metric}, {variable.label_name})"
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": _SOURCES["promql"],
        "query": {"query": query, "refId": variable.name, "qryType": 1},
        "definition": query,
        "refresh": 2,  # on every time range change: new offenders appear
        "includeAll": True,
        "allValue": variable.all_value,
        "multi": False,
        "sort": 1,
        "current": {"text": "All", "value": "$__all"},
    }


def dashboard() -> dict[str, Any]:
    """The dashboard JSON Grafana provisions (the `id` is Grafana's to assign, so it is null)."""
    places = grid()
    return {
        "id": None,
        "uid": UID,
        "title": TITLE,
        "description": "The auditor's receipt: what was refused, by which control, for whom, and what ran.",
        "tags": ["trustusbank", "dora"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "timezone": "utc",
        "time": dict(TIME_RANGE),
        "refresh": REFRESH,
        "templating": {"list": [_variable(v) for v in VARIABLES]},
        "annotations": {"list": []},
        "links": [],
        "panels": [
            _panel(p, places[p.id])
            for p in sorted(PANELS, key=lambda p: (places[p.id]["y"], places[p.id]["x"]))
        ],
    }


def config_map() -> dict[str, Any]:
    """The ConfigMap the Grafana sidecar loads (it watches every namespace for the label)."""
    label, value = DASHBOARD_LABEL
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIG_MAP,
            "namespace": OBSERVABILITY_NS,
            "labels": {label: value, "app": "trustusbank"},
        },
        "data": {FILE: json.dumps(dashboard(), indent=2)},
    }
