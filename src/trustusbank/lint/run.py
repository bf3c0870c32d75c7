"""Load a file or folder leniently, run every check, return the findings sorted.

The strict loader (`trustusbank.manifests`) refuses what it cannot validate, including
kinds not registered yet; a linter must still read a user's YAML, so documents are
read with their line numbers and, where the loader refuses one, kept as a raw
`Manifest` all the same. The loader's problems are reported as errors, except "unknown
kind" for the kinds this linter reads on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustusbank.lint import agentgateway, istio, kagent, kagent_oss
from trustusbank.lint.findings import Finding, Severity, sort_findings
from trustusbank.manifests.core import Deployment, Namespace
from trustusbank.manifests.kinds import KINDS, to_manifest
from trustusbank.manifests.manifest import Manifest, Problem, Source
from trustusbank.manifests.yaml_source import Document, read_documents, yaml_files

# Kinds the linter reads from the raw document whether or not the loader knows them.
LENIENT_KINDS = frozenset(
    {
        ("agentgateway.dev", agentgateway.POLICY_KIND),
        ("agentgateway.dev", agentgateway.BACKEND_KIND),
        ("gateway.networking.k8s.io", "Gateway"),
        ("gateway.networking.k8s.io", "HTTPRoute"),
        ("policy.kagent-enterprise.solo.io", "AccessPolicy"),
        ("kagent.dev", "Agent"),
    }
)


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


@dataclass
class Inputs:
    """Everything read from the path, by kind (as raw manifests: the checks read `body`)."""

    manifests: list[Manifest]
    problems: list[Finding] = field(default_factory=list)

    def of(self, group: str, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if (_group(m.api_version), m.kind) == (group, kind)]


def load(path: Path) -> Inputs:
    """Every document under `path`; raises FileNotFoundError when `path` does not exist."""
    if not path.exists():
        raise FileNotFoundError(path)
    files = yaml_files(path)
    if not files:
        return Inputs([], [_problem_finding(Problem(path, 0, "no *.yaml or *.yml files found"))])
    inputs = Inputs([])
    for file in files:
        documents, problems = read_documents(file)
        inputs.problems += [_problem_finding(p) for p in problems]
        for document in documents:
            manifest = _load(document, inputs)
            if manifest is not None:
                inputs.manifests.append(manifest)
    return inputs


def _load(document: Document, inputs: Inputs) -> Manifest | None:
    data = document.data
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if isinstance(api_version, str) and isinstance(kind, str):
        known = (api_version, kind) in KINDS
        if not known and (_group(api_version), kind) in LENIENT_KINDS:
            return _raw(document)
    manifest, problems = to_manifest(document)
    inputs.problems += [_problem_finding(p) for p in problems]
    return manifest if manifest is not None else _raw(document)


def _raw(document: Document) -> Manifest | None:
    """The document as a Manifest without validation; None when it has no name to report by."""
    data = document.data
    metadata = data.get("metadata")
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(metadata, Mapping) or not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or not name:
        return None
    return Manifest(
        api_version=api_version,
        kind=kind,
        name=name,
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        labels=_strings(metadata.get("labels")),
        annotations=_strings(metadata.get("annotations")),
        body=data,
        source=Source(document.file, document.line),
        positions=document.positions,
    )


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _problem_finding(problem: Problem) -> Finding:
    return Finding(
        problem.file,
        problem.line,
        Severity.ERROR,
        "manifest-invalid",
        "",
        "",
        None,
        problem.message,
        "this document is refused as written (by trustusbank's loader, and by a cluster's schema or "
        "admission webhook where they check the same thing)",
    )


# --- checks ----------------------------------------------------------------------------------


def _views(manifests: Iterable[Manifest], build: Callable[[Manifest], Any]) -> list[Any]:
    views = []
    for manifest in manifests:
        try:
            views.append(build(manifest))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a document the loader refused: its problems are already reported
    return views


def istio_checks(inputs: Inputs) -> list[Finding]:
    namespaces: list[Namespace] = _views(inputs.of("", "Namespace"), Namespace.from_manifest)
    deployments: list[Deployment] = _views(inputs.of("apps", "Deployment"), Deployment.from_manifest)
    gateways = inputs.of("gateway.networking.k8s.io", "Gateway")
    pods = [istio.Pod(d.name, d.namespace, d.pod_labels) for d in deployments]
    pods += [istio.gateway_pod(g) for g in gateways]
    pods += kagent_oss.agent_pods(inputs.manifests)
    context = istio.Context(
        namespaces={n.name: n for n in namespaces},
        pods=pods,
        has_deployments=bool(deployments),
        gateways=gateways,
        services=inputs.of("", "Service"),
    )
    findings: list[Finding] = []
    for manifest in inputs.of("security.istio.io", istio.KIND):
        try:
            findings += istio.check_policy(manifest, context)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # refused by the loader (reported above): its shape cannot be trusted
    return findings


def agentgateway_checks(inputs: Inputs) -> list[Finding]:
    objects = agentgateway.Objects(
        backends=inputs.of("agentgateway.dev", agentgateway.BACKEND_KIND),
        routes=inputs.of("gateway.networking.k8s.io", "HTTPRoute"),
        gateways=inputs.of("gateway.networking.k8s.io", "Gateway"),
    )
    findings: list[Finding] = []
    for manifest in inputs.of("agentgateway.dev", agentgateway.POLICY_KIND):
        findings += agentgateway.check_policy(manifest, objects)
    return findings


def kagent_checks(inputs: Inputs) -> list[Finding]:
    return kagent.check(inputs.manifests)


def kagent_oss_checks(inputs: Inputs) -> list[Finding]:
    return kagent_oss.check(inputs.manifests)


# The extension point: a new check is a function of the inputs appended here.
CHECKS: list[Callable[[Inputs], list[Finding]]] = [
    istio_checks,
    agentgateway_checks,
    kagent_checks,
    kagent_oss_checks,
]


def lint_inputs(inputs: Inputs) -> list[Finding]:
    return sort_findings([*inputs.problems, *(f for check in CHECKS for f in check(inputs))])


def lint_path(path: Path) -> list[Finding]:
    """Every finding for the file or folder at `path`, sorted by file and line."""
    return lint_inputs(load(path))
