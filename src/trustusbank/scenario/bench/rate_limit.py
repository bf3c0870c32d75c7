"""The benchmarks' lift of deploy/'s gateway-wide rate limit, on every route of the gateway.

deploy/'s limit (600 a minute, burst 60, each route its own bucket) is a brake on runaway
agents, and a benchmark sending prompts back to back is one: after a minute of it, the agents'
calls are refused with 429 and what is measured is the brake. A route-level policy of the
benchmark's own is more specific than the Gateway's, so it takes precedence, as in agentgateway;
one per HTTPRoute that deploy/ declares.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.manifests.yaml_source import read_documents, yaml_files
from trustusbank.paths import deploy_dir

FILE = "benchmark-rate-limit.yaml"


def routes(deploy: Path) -> list[tuple[str, str]]:
    """(namespace, name) of every HTTPRoute in deploy/."""
    found = []
    for path in yaml_files(deploy):
        documents, _ = read_documents(path)
        for d in documents:
            if isinstance(d.data, dict) and d.data.get("kind") == "HTTPRoute":
                meta = d.data["metadata"]
                found.append((str(meta.get("namespace", "default")), str(meta["name"])))
    return sorted(found)


def unlimited(deploy: Path) -> str:
    """One AgentgatewayPolicy per route, each with a limit no benchmark reaches."""
    documents = [
        {
            "apiVersion": "agentgateway.dev/v1alpha1",
            "kind": "AgentgatewayPolicy",
            "metadata": {"name": f"benchmark-rate-limit-{name}", "namespace": namespace},
            "spec": {
                "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": name}],
                "traffic": {"rateLimit": {"local": [{"requests": 1000000, "unit": "Seconds"}]}},
            },
        }
        for namespace, name in routes(deploy)
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


def lift_rate_limit(files: ClusterFiles, deploy: Path | None = None) -> None:
    """Before `up`: the benchmark's own unlimited policies in the cluster's applied manifests."""
    files.make()
    (files.applied / FILE).write_text(unlimited(deploy or deploy_dir()))
