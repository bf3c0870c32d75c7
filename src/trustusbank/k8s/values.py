"""The Helm values Kubernetes mode gives the observability charts: data only, written as files.

Sized for a laptop's kind cluster (one replica, filesystem storage, short retention). The
PrometheusRule of deploy/10-observability is picked up whatever its labels; Alertmanager
mails the SOC inbox (mailpit's SMTP) grouped by alert and offender, as the embedded
evaluator does; Grafana gets Tempo and Loki as data sources and loads every ConfigMap
labelled `grafana_dashboard: "1"` (the DORA evidence dashboard's way in, `k8s/grafana.py`).
The data sources' uids are pinned here, the chart's Prometheus one included, since the
dashboard refers to them by uid.
"""

from __future__ import annotations

from typing import Any

OBSERVABILITY_NS = "trustusbank-observability"
SVC = f"{OBSERVABILITY_NS}.svc.cluster.local"
DASHBOARD_LABEL = ("grafana_dashboard", "1")
PROMETHEUS_UID, LOKI_UID, TEMPO_UID = "prometheus", "loki", "tempo"
# A log line that carries a trace id (ours print `trace_id=<hex>`, agentgateway `trace.id=<hex>`)
# links to the trace in Tempo. `$$` is Grafana provisioning's escape for a literal `$`.
TRACE_LINK = {
    "name": "trace_id",
    "matcherRegex": r"trace[._]id=(\w+)",
    "datasourceUid": TEMPO_UID,
    "url": "$${__value.raw}",
    "urlDisplayLabel": "Trace in Tempo",
}


def kube_prometheus_stack() -> dict[str, Any]:
    label, value = DASHBOARD_LABEL
    return {
        "prometheus": {
            "prometheusSpec": {
                "ruleSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "retention": "6h",
            }
        },
        "alertmanager": {
            "config": {
                "global": {
                    "smtp_smarthost": f"mailpit-smtp.{SVC}:25",
                    "smtp_from": "alerts@trustusbank.local",
                    "smtp_require_tls": False,
                },
                # Grouped as the embedded evaluator groups; short waits so an act's mail comes within the
                # act (Alertmanager's defaults, 30 s and 5 min, would hold Act 3's mail past its end).
                "route": {
                    "receiver": "soc",
                    "group_by": ["alertname", "offender"],
                    "group_wait": "10s",
                    "group_interval": "30s",
                    "repeat_interval": "4h",
                },
                "receivers": [{"name": "soc", "email_configs": [{"to": "soc@trustusbank.local"}]}],
            }
        },
        "grafana": {
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": label,
                    "labelValue": value,
                    "searchNamespace": "ALL",
                },
                "datasources": {"uid": PROMETHEUS_UID},
            },
            "additionalDataSources": [
                {"name": "Tempo", "type": "tempo", "uid": TEMPO_UID, "url": f"http://tempo.{SVC}:3200"},
                {
                    "name": "Loki",
                    "type": "loki",
                    "uid": LOKI_UID,
                    "url": f"http://loki.{SVC}:3100",
                    "jsonData": {"derivedFields": [TRACE_LINK]},
                },
            ],
        },
    }


def loki() -> dict[str, Any]:
    """Loki as one binary on the node's filesystem: the chart's other modes want object storage."""
    return {
        "deploymentMode": "SingleBinary",
        "loki": {
            "auth_enabled": False,
            "commonConfig": {"replication_factor": 1},
            "storage": {"type": "filesystem"},
            "schemaConfig": {
                "configs": [
                    {
                        "from": "2024-01-01",
                        "store": "tsdb",
                        "object_store": "filesystem",
                        "schema": "v13",
                        "index": {"prefix": "index_", "period": "24h"},
                    }
                ]
            },
        },
        "singleBinary": {"replicas": 1},
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
    }


def tempo() -> dict[str, Any]:
    """Tempo receiving OTLP (gRPC 4317, HTTP 4318), traces on local disk."""
    return {
        "tempo": {
            "receivers": {
                "otlp": {
                    "protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}
                }
            },
            "storage": {"trace": {"backend": "local", "local": {"path": "/var/tempo/traces"}}},
        },
        "persistence": {"enabled": False},
    }
