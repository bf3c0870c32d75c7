"""Alerts over the mesh's and the agents' metrics, delivered to the SOC inbox by SMTP.

The rules are the PrometheusRule in deploy/10-observability, run here by a small
PromQL evaluator (`promql/`) over our own scrapes, and on a cluster by Prometheus;
tests/alerts/promtool/ holds one set of test series both must agree on.
"""
