"""Port 18002 as a Prometheus user meets it: /alerts, and the HTTP API subset tools and Grafana use.

A real node proxy's metric classes are served on /metrics and scraped over HTTP; the
evaluator is stepped with its own clock (so every timestamp below is exact), and its routes
are served by uvicorn on 127.0.0.1 without its loop: each answer reads the state the steps left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.alerts.console import ATTEMPTS, T0, TO_ATTACKER, AlertsPage, stack
from tests.alerts.helpers import CONVERTER
from trustusbank.manifests.prometheus import PrometheusRule, RuleGroup


async def test_a_firing_rule_reads_the_same_on_the_page_and_both_apis(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.step(T0)
        s.node.attempts.labels(**TO_ATTACKER, outcome="allowed").inc()
        await s.step(T0 + 1)
        alerts = (await s.get("/api/v1/alerts"))["data"]["alerts"]
        rules = await s.get("/api/v1/rules")
        redirect = await s.http.get("/")
        page = (await s.http.get("/", follow_redirects=True)).text
        series = (await s.get("/api/v1/query", query="ALERTS", time=T0 + 1))["data"]

    [alert] = alerts
    assert alert["state"] == "firing"
    assert alert["activeAt"] == "2023-11-14T22:13:21Z"
    assert alert["value"] == "1e+00"
    assert alert["labels"] == {
        "alertname": "BankToAttackerAttempt",
        "severity": "critical",
        "offender": "trustusbank-bank-vendors-currency-converter",
        "outcome": "allowed",
        "source_principal": CONVERTER,
        "source_workload": "currency-converter",
        "source_workload_namespace": "trustusbank-bank-vendors",
        "destination_workload": "mock-attacker",
        "destination_workload_namespace": "external-attacker",
    }
    summary = f"{CONVERTER} tried to reach external-attacker/mock-attacker (allowed)"
    assert alert["annotations"]["summary"] == summary

    assert rules["status"] == "success"
    [group] = rules["data"]["groups"]
    assert (group["name"], group["file"], group["lastEvaluation"]) == (
        "trustusbank-soc",
        "trustusbank-observability/trustusbank-soc",
        "2023-11-14T22:13:21Z",
    )
    by_name = {r["name"]: r for r in group["rules"]}
    assert list(by_name) == [
        "IstioAuthZDeny",
        "BankToAttackerAttempt",
        "KagentAccessPolicyDeny",
        "McpToolDrift",
    ]
    firing = by_name["BankToAttackerAttempt"]
    assert (firing["state"], firing["health"], firing["type"]) == ("firing", "ok", "alerting")
    assert firing["alerts"] == alerts
    assert firing["labels"] == {"severity": "critical"}
    assert firing["duration"] == 0
    assert firing["query"].startswith("label_replace(")
    assert ATTEMPTS in firing["query"]
    assert firing["lastEvaluation"] == "2023-11-14T22:13:21Z"
    for quiet in ("IstioAuthZDeny", "KagentAccessPolicyDeny", "McpToolDrift"):
        assert (by_name[quiet]["state"], by_name[quiet]["alerts"]) == ("inactive", [])

    assert (redirect.status_code, redirect.headers["location"]) == (302, "/alerts")
    shown = AlertsPage(page)
    assert {n: r["state"] for n, r in shown.rules.items()} == {n: r["state"] for n, r in by_name.items()}
    assert shown.counts == {"firing": 1, "pending": 0, "inactive": 3}
    assert shown.rules["BankToAttackerAttempt"]["open"]
    [(state, text)] = shown.rules["BankToAttackerAttempt"]["alerts"]
    row = "".join(text)
    assert state == "firing"
    for name, value in alert["labels"].items():
        assert f'{name}="{value}"' in row
    assert alert["annotations"]["summary"] in row
    assert "2023-11-14 22:13:21" in row
    assert "<script" not in page
    assert "src=" not in page
    assert "<link" not in page

    # Prometheus' own record of it: ALERTS, with the alert's labels and its state.
    assert series["resultType"] == "vector"
    [element] = series["result"]
    assert element["metric"] == {"__name__": "ALERTS", "alertstate": "firing", **alert["labels"]}
    assert element["value"] == [T0 + 1, "1"]


async def test_query_range_over_a_counter_that_grew(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.step(T0)  # the counter does not exist yet (a child appears at 0 once labelled)
        counter = s.node.attempts.labels(**TO_ATTACKER, outcome="allowed")
        counter.inc()
        await s.step(T0 + 1)
        await s.step(T0 + 2)
        counter.inc(2)
        await s.step(T0 + 3)
        await s.step(T0 + 4)
        raw = await s.get("/api/v1/query_range", query=ATTEMPTS, start=T0, end=T0 + 4, step=1)
        summed = await s.post(
            "/api/v1/query_range",
            query=f"sum by (outcome) ({ATTEMPTS})",
            start="2023-11-14T22:13:20Z",
            end="2023-11-14T22:13:24.000Z",
            step="2s",
        )
        window = await s.get("/api/v1/query", query=f"{ATTEMPTS}[3s]", time=T0 + 4)
        alerted = await s.get("/api/v1/query_range", query="ALERTS", start=T0, end=T0 + 4, step=1)

    metric = {"__name__": ATTEMPTS, "job": "ztunnel", "instance": s.instance, "outcome": "allowed"}
    metric.update(TO_ATTACKER)
    assert raw == {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": metric,
                    "values": [[T0 + 1, "1"], [T0 + 2, "1"], [T0 + 3, "3"], [T0 + 4, "3"]],
                }
            ],
        },
    }
    assert summed["data"]["result"] == [
        {"metric": {"outcome": "allowed"}, "values": [[T0 + 2, "1"], [T0 + 4, "3"]]}
    ]
    # A range selector at an instant is its raw samples in (t - 3s, t].
    assert window["data"] == {
        "resultType": "matrix",
        "result": [{"metric": metric, "values": [[T0 + 2, "1"], [T0 + 3, "3"], [T0 + 4, "3"]]}],
    }
    # The alert fired at the first increase and kept firing: one ALERTS series from T0 + 1.
    [fired] = alerted["data"]["result"]
    assert fired["metric"]["alertname"] == "BankToAttackerAttempt"
    assert fired["values"] == [[T0 + t, "1"] for t in range(1, 5)]


async def test_grafana_data_source_check_and_buildinfo(tmp_path: Path) -> None:
    """Grafana's "Save & test" POSTs the instant query `1+1` and reads buildinfo (features: none, so
    it takes this for a plain Prometheus)."""
    async with stack(tmp_path) as s:
        health = await s.post("/api/v1/query", query="1+1", time="4")
        info = await s.get("/api/v1/status/buildinfo")
        text = await s.get("/api/v1/query", query='"hello"', time=T0)
    assert health == {"status": "success", "data": {"resultType": "scalar", "result": [4, "2"]}}
    assert info["status"] == "success"
    assert set(info["data"]) == {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}
    assert all(isinstance(v, str) for v in info["data"].values())
    assert text["data"] == {"resultType": "string", "result": [T0, "hello"]}


@pytest.mark.parametrize(
    ("path", "params", "said"),
    [
        ("/api/v1/query", {}, 'invalid parameter "query"'),
        ("/api/v1/query", {"query": "sum("}, 'invalid parameter "query"'),
        ("/api/v1/query", {"query": f"{ATTEMPTS} * 2"}, "arithmetic operator '*' is not supported"),
        ("/api/v1/query", {"query": "ALERTS", "time": "yesterday"}, 'invalid parameter "time"'),
        ("/api/v1/query_range", {"query": "ALERTS", "start": T0, "end": T0 - 1, "step": 1}, "before start"),
        ("/api/v1/query_range", {"query": "ALERTS", "start": T0, "end": T0, "step": 0}, "step widths"),
        ("/api/v1/query_range", {"query": "ALERTS", "start": T0, "end": T0, "step": "1x"}, '"step"'),
        ("/api/v1/query_range", {"query": "ALERTS", "start": T0, "end": T0 + 11_001, "step": 1}, "11,000"),
        ("/api/v1/query_range", {"query": "ALERTS[1m]", "start": T0, "end": T0, "step": 1}, "range vector"),
        ("/api/v1/query_range", {"query": "ALERTS", "end": T0, "step": 1}, 'invalid parameter "start"'),
        ("/api/v1/rules", {"type": "alerts"}, 'invalid parameter "type"'),
        ("/api/v1/query", {"query": "ALERTS", "timeout": "soon"}, 'invalid parameter "timeout"'),
    ],
)
async def test_a_bad_request_is_bad_data(
    tmp_path: Path, path: str, params: dict[str, Any], said: str
) -> None:
    async with stack(tmp_path) as s:
        response = await s.http.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["errorType"]) == ("error", "bad_data")
    assert said in body["error"]


async def test_a_query_that_fails_on_the_data_is_an_execution_error(tmp_path: Path) -> None:
    """Two series made one label set: Prometheus refuses to answer (422), and so does this."""
    async with stack(tmp_path) as s:
        for outcome in ("allowed", "denied"):
            s.node.attempts.labels(**TO_ATTACKER, outcome=outcome).inc()
        await s.step(T0)
        collapsed = f'label_replace({ATTEMPTS}, "outcome", "same", "outcome", ".*")'
        response = await s.http.post("/api/v1/query", data={"query": collapsed, "time": str(T0)})
    assert response.status_code == 422
    assert response.json()["errorType"] == "execution"
    assert "two series" in response.json()["error"]


async def test_a_range_query_past_its_deadline_is_a_timeout(tmp_path: Path) -> None:
    """A zero `timeout` has passed before the first step: Prometheus answers 503 `timeout`."""
    async with stack(tmp_path) as s:
        await s.step(T0)
        params = {"query": "ALERTS", "start": T0, "end": T0 + 60, "step": 1, "timeout": "0"}
        late = await s.http.get("/api/v1/query_range", params=params)
        params["timeout"] = "1m"
        in_time = await s.http.get("/api/v1/query_range", params=params)
    assert late.status_code == 503
    body = late.json()
    assert (body["errorType"], body["error"]) == ("timeout", "query timed out in expression evaluation")
    assert in_time.status_code == 200


async def test_a_metric_the_evaluator_does_not_keep_is_a_warning_not_silence(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.step(T0)
        answer = await s.get("/api/v1/query", query="kube_pod_container_info", time=T0)
        kept = await s.get("/api/v1/query", query=ATTEMPTS, time=T0)
    assert answer["data"] == {"resultType": "vector", "result": []}
    [warning] = answer["warnings"]
    assert "'kube_pod_container_info' is not kept here" in warning
    assert ATTEMPTS in warning
    assert "warnings" not in kept


def _groups() -> list[RuleGroup]:
    body = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "extra", "namespace": "trustusbank-observability"},
        "spec": {
            "groups": [
                {
                    "name": "recorded",
                    "rules": [
                        {"record": "trustusbank:attempts:sum", "expr": f"sum by (outcome) ({ATTEMPTS})"}
                    ],
                },
                {
                    "name": "alerting",
                    "rules": [{"alert": "SlowBurn", "expr": f"{ATTEMPTS} > 0", "for": "2s"}],
                },
            ]
        },
    }
    return PrometheusRule.from_body(body, "extra", "trustusbank-observability").groups


async def test_rules_filter_by_type_and_pending_alerts_show_as_pending(tmp_path: Path) -> None:
    async with stack(tmp_path, _groups()) as s:
        s.node.attempts.labels(**TO_ATTACKER, outcome="allowed").inc()
        await s.step(T0)
        record = await s.get("/api/v1/rules", type="record")
        alert = await s.get("/api/v1/rules", type="alert")
        pending = (await s.get("/api/v1/alerts"))["data"]["alerts"]
        recorded = await s.get("/api/v1/query", query="trustusbank:attempts:sum", time=T0)
        page = AlertsPage((await s.http.get("/alerts")).text)
        only_firing = AlertsPage((await s.http.get("/alerts", params={"state": "firing"})).text)
        await s.step(T0 + 2)
        fired = (await s.get("/api/v1/alerts"))["data"]["alerts"]
        states = await s.get("/api/v1/query_range", query="ALERTS", start=T0, end=T0 + 2, step=1)

    [recording_group] = record["data"]["groups"]
    assert recording_group["name"] == "recorded"
    [rule] = recording_group["rules"]
    assert (rule["name"], rule["type"], rule["health"]) == ("trustusbank:attempts:sum", "recording", "ok")
    assert "alerts" not in rule
    assert "state" not in rule
    [alerting_group] = alert["data"]["groups"]
    [slow] = alerting_group["rules"]
    assert (slow["name"], slow["state"], slow["duration"]) == ("SlowBurn", "pending", 2)
    assert [a["state"] for a in pending] == ["pending"]
    assert recorded["data"]["result"] == [
        {"metric": {"__name__": "trustusbank:attempts:sum", "outcome": "allowed"}, "value": [T0, "1"]}
    ]
    assert page.rules["SlowBurn"]["state"] == "pending"
    assert [state for state, _ in page.rules["SlowBurn"]["alerts"]] == ["pending"]
    assert "trustusbank:attempts:sum" not in page.rules  # the page lists alerting rules, as Prometheus'
    assert only_firing.rules == {}
    assert [a["state"] for a in fired] == ["firing"]
    # ALERTS changes series with the state: the pending one ends (stale) as the firing one begins.
    by_state = {r["metric"]["alertstate"]: r["values"] for r in states["data"]["result"]}
    assert by_state == {"pending": [[T0, "1"], [T0 + 1, "1"]], "firing": [[T0 + 2, "1"]]}
