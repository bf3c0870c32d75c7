"""The policy files the follow-on demos write, as a user would write them, and their life on the cluster.

Each demo writes its policy to a file and applies it through `runtime.apply`, the code
path of `trustusbank apply -f`, so the change is validated, recorded in the runtime
event log, and picked up live; it removes the file again on the way out, even when the
demo fails. The documents are the Kubernetes shapes a real cluster takes unchanged.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from trustusbank.errors import OperationError
from trustusbank.runtime import control
from trustusbank.runtime.apply import applied, apply, delete
from trustusbank.scenario.cluster import Cluster, Progress

INCIDENT_LABEL = "dora.incident-id"
PLATFORM = "trustusbank-platform"
AGENTS = "trustusbank-bank-agents"
VENDORS = "trustusbank-bank-vendors"
GATEWAY = "trustusbank-agentgw"
AGW_GROUP = "agentgateway.dev"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

Document = dict[str, Any]


def incident_id(sequence: int, day: datetime.date | None = None) -> str:
    """`INC-<yyyymmdd>-<nnn>`, the id an incident's changes are labelled with."""
    return f"INC-{(day or datetime.date.today()):%Y%m%d}-{sequence:03d}"


def _metadata(name: str, namespace: str, labels: Mapping[str, str] | None) -> Document:
    metadata: Document = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return metadata


def route_rate_limit(name: str, route: str, requests: int, unit: str, burst: int) -> Document:
    """An AgentgatewayPolicy local rate limit on one HTTPRoute (traffic.rateLimit.local)."""
    return {
        "apiVersion": f"{AGW_GROUP}/v1alpha1",
        "kind": "AgentgatewayPolicy",
        "metadata": _metadata(name, PLATFORM, None),
        "spec": {
            "targetRefs": [{"group": GATEWAY_API_GROUP, "kind": "HTTPRoute", "name": route}],
            "traffic": {"rateLimit": {"local": [{"requests": requests, "unit": unit, "burst": burst}]}},
        },
    }


def deny_port_from_namespaces(
    name: str, namespace: str, app: str, port: int, sources: list[str], labels: Mapping[str, str]
) -> Document:
    """An Istio AuthorizationPolicy DENY to one port of a workload from whole namespaces (L4 only)."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "action": "DENY",
            "rules": [
                {
                    "from": [{"source": {"namespaces": sources}}],
                    "to": [{"operation": {"ports": [str(port)]}}],
                }
            ],
        },
    }


def mcp_authorization(
    name: str, backend: str, action: str, expressions: list[str], labels: Mapping[str, str] | None = None
) -> Document:
    """An AgentgatewayPolicy `backend.mcp.authorization` on one MCP AgentgatewayBackend."""
    return {
        "apiVersion": f"{AGW_GROUP}/v1alpha1",
        "kind": "AgentgatewayPolicy",
        "metadata": _metadata(name, PLATFORM, labels),
        "spec": {
            "targetRefs": [{"group": AGW_GROUP, "kind": "AgentgatewayBackend", "name": backend}],
            "backend": {
                "mcp": {"authorization": {"action": action, "policy": {"matchExpressions": expressions}}}
            },
        },
    }


def gateway_pod_deny_on_paths(name: str, paths: list[str], port: int) -> Document:
    """The runbook's "L7 pre-call block": a selector on the gateway's pods, DENY on method and paths."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": _metadata(name, PLATFORM, None),
        "spec": {
            "selector": {"matchLabels": {f"{GATEWAY_API_GROUP}/gateway-name": GATEWAY}},
            "action": "DENY",
            "rules": [{"to": [{"operation": {"methods": ["POST"], "paths": paths, "ports": [str(port)]}}]}],
        },
    }


def to_yaml(document: Document) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=200)


def write(document: Document, folder: Path) -> Path:
    """The document as `<folder>/<name>.yaml`, the file a user would `apply -f`."""
    path = folder / f"{document['metadata']['name']}.yaml"
    path.write_text(to_yaml(document), encoding="utf-8")
    return path


class PolicyInUse(OperationError, RuntimeError):
    """A file of the same name is applied already: the demo will not replace (and then delete) it."""


@asynccontextmanager
async def applied_policy(cluster: Cluster, document: Document, progress: Progress) -> AsyncIterator[Path]:
    """Apply `document` as a file for the duration of the block; it is removed afterwards, whatever happens.

    Yields the file that was applied (in a temporary folder that goes away with it).
    """
    name = f"{document['metadata']['name']}.yaml"
    if any(p.name == name for p in applied(cluster.files)):
        raise PolicyInUse(f"{name} is applied already; remove it (`trustusbank delete -f {name}`) first")
    with tempfile.TemporaryDirectory(prefix="trustusbank-followup-") as folder:
        path = write(document, Path(folder))
        progress(f"applying {name}")
        apply(cluster.files, control.deploy_of(cluster.files), [path])
        try:
            yield path
        finally:
            progress(f"removing {name}")
            delete(cluster.files, [path])
