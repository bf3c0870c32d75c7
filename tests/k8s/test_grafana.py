"""The DORA evidence dashboard as Kubernetes mode applies it: a ConfigMap that validates, JSON Grafana
can place and query with the data sources the Helm values provision, and a plan that says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.k8s.fakebin import make
from tests.paths import DEPLOY
from trustusbank.k8s import grafana, schemas, values
from trustusbank.k8s.plan import ISTIO_NS, Options, install_plan
from trustusbank.telemetry import dashboard


def provisioned() -> dict[str, str]:
    """uid → type of every data source the kube-prometheus-stack values give Grafana."""
    stack = values.kube_prometheus_stack()["grafana"]
    sources = {source["uid"]: source["type"] for source in stack["additionalDataSources"]}
    return {stack["sidecar"]["datasources"]["uid"]: "prometheus", **sources}  # the chart's own


def loaded() -> dict[str, Any]:
    """The dashboard as the Grafana sidecar reads it: out of the ConfigMap's one file."""
    [(name, text)] = grafana.config_map()["data"].items()
    assert name.endswith(".json")
    found: dict[str, Any] = json.loads(text)
    return found


def test_the_config_map_validates_and_carries_the_label_the_sidecar_watches(tmp_path: Path) -> None:
    file = tmp_path / "dashboard.yaml"
    file.write_text(yaml.safe_dump(grafana.config_map()))
    assert schemas.validate_path(file) == []
    meta = grafana.config_map()["metadata"]
    sidecar = values.kube_prometheus_stack()["grafana"]["sidecar"]["dashboards"]
    assert meta["labels"][sidecar["label"]] == sidecar["labelValue"]
    assert meta["namespace"] == values.OBSERVABILITY_NS  # where the sidecar looks first (it looks in ALL)

    # The same check refuses what a cluster would: here a file that is not a string.
    broken = grafana.config_map()
    broken["data"] = {grafana.FILE: loaded()}
    file.write_text(yaml.safe_dump(broken))
    [problem] = schemas.validate_path(file)
    assert problem.path.startswith("data.")


def test_the_dashboard_is_dora_evidence_with_every_panel_once() -> None:
    board = loaded()
    assert (board["uid"], board["title"]) == ("dora-evidence", dashboard.TITLE)
    assert board["schemaVersion"] == grafana.SCHEMA_VERSION
    assert board["time"] == grafana.TIME_RANGE
    assert board["refresh"] == grafana.REFRESH
    panels = {p["id"]: p for p in board["panels"]}
    assert len(panels) == len(board["panels"]) == len(dashboard.PANELS)
    for definition in dashboard.PANELS:
        panel = panels[definition.id]
        assert (panel["type"], panel["title"]) == (definition.kind, definition.title)
        assert panel["description"] == definition.description
        assert [t["expr"] for t in panel["targets"]] == [q.expr for q in definition.queries]
        assert len({t["refId"] for t in panel["targets"]}) == len(definition.queries)
    [variable] = board["templating"]["list"]
    assert variable["name"] == dashboard.IDENTITY.name
    assert f"${variable['name']}" in panels[9]["targets"][0]["expr"]


def test_every_data_source_is_one_the_values_provision_and_of_the_right_type() -> None:
    sources = provisioned()
    board = loaded()
    references = [p["datasource"] for p in board["panels"]]
    references += [t["datasource"] for p in board["panels"] for t in p["targets"]]
    references += [v["datasource"] for v in board["templating"]["list"]]
    for reference in references:
        assert sources.get(reference["uid"]) == reference["type"], reference
    used = {r["type"] for r in references}
    assert used == {"prometheus", "loki"}
    # A log line's trace id links to Tempo, provisioned too.
    [loki] = [
        s for s in values.kube_prometheus_stack()["grafana"]["additionalDataSources"] if s["type"] == "loki"
    ]
    [link] = loki["jsonData"]["derivedFields"]
    assert sources[link["datasourceUid"]] == "tempo"


def test_panels_fill_the_grid_without_overlapping() -> None:
    taken: dict[tuple[int, int], int] = {}
    for panel in loaded()["panels"]:
        place = panel["gridPos"]
        assert place["w"] > 0
        assert place["h"] > 0
        assert place["x"] + place["w"] <= grafana.COLUMNS, panel["title"]
        for x in range(place["x"], place["x"] + place["w"]):
            for y in range(place["y"], place["y"] + place["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps panel {taken[(x, y)]}"
                taken[(x, y)] = panel["id"]
    rows = {y for _, y in taken}
    assert rows == set(range(max(rows) + 1))  # no empty band between panels


def test_the_ztunnel_log_query_reads_the_namespace_istio_is_installed_in() -> None:
    assert f'namespace="{ISTIO_NS}"' in dashboard.ZTUNNEL_LOG


def test_k8s_up_applies_the_config_map_with_the_alert_rules(tmp_path: Path) -> None:
    plan = install_plan(Options(DEPLOY, tmp_path / "k8s"))
    [observability] = [text for path, text in plan.files.items() if path.name == "10-observability.yaml"]
    documents = list(yaml.safe_load_all(observability))
    kinds = [d["kind"] for d in documents]
    assert "PrometheusRule" in kinds
    [config_map] = [
        d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == grafana.CONFIG_MAP
    ]
    assert json.loads(config_map["data"][grafana.FILE])["uid"] == grafana.UID
    assert plan.added == [f"ConfigMap {values.OBSERVABILITY_NS}/{grafana.CONFIG_MAP}: {grafana.WHY}"]


def test_the_dry_run_names_the_config_map(tmp_path: Path) -> None:
    fake = make(tmp_path / "bin")
    env = fake.env(
        ("kubectl",), TRUSTUSBANK_STATE_DIR=str(tmp_path / "state"), TRUSTUSBANK_DEPLOY_DIR=str(DEPLOY)
    )
    done = subprocess.run(
        [sys.executable, "-m", "trustusbank", "k8s", "up", "--kind", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert fake.calls() == []
    shown = f"also applied: ConfigMap {values.OBSERVABILITY_NS}/{grafana.CONFIG_MAP}: "
    assert shown in done.stdout
