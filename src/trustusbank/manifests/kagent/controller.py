"""kagent's controller for the embedded runtime: every Agent becomes a Deployment, a Service and
(when missing) a ServiceAccount, as kagent creates them on a cluster.

kagent labels them `app: kagent`, `kagent: <agent>`, `app.kubernetes.io/name: <agent>`,
`app.kubernetes.io/managed-by: kagent`, `app.kubernetes.io/part-of: kagent`, selects pods by
`app` and `kagent`, runs the pod as the ServiceAccount named after the agent, and serves A2A
on port 8080 (Service port 8080 -> 8080, named http). What differs, because the embedded
runtime starts `trustusbank serve <workload>` processes: the container runs `trustusbank
serve agent` with the resolved `AgentSpec` in `TRUSTUSBANK_AGENT_SPEC` (kagent mounts its
config from a Secret); the model key is a plain env value taken from the ModelConfig's Secret,
named after `apiKeySecretKey` (kagent uses a secretKeyRef, named for the provider, such as
ANTHROPIC_API_KEY; our launcher has no valueFrom); the readiness probe is /healthz.

The generated objects point at their Agent's file and line, so a problem with one reads as a
problem with the Agent.
"""

from __future__ import annotations

from typing import Any, TypeVar

from trustusbank.manifests.kagent.objects import AGENT_PORT, Agent, Index
from trustusbank.manifests.kagent.resolve import api_key, resolve
from trustusbank.manifests.kagent.spec import SPEC_ENV, AgentSpec
from trustusbank.manifests.manifest import Manifest, ManifestError, Objects, Problem

AGENT_IMAGE = "localhost:5001/trustusbank/agent:1.0.0"
AGENT_COMMAND = ("trustusbank", "serve", "agent", "--host", "0.0.0.0", "--port", str(AGENT_PORT))
MANAGED_BY = "app.kubernetes.io/managed-by"
GENERATED_KINDS = ("Deployment", "Service", "ServiceAccount")


B = TypeVar("B", bound=Objects)


def agent_spec(bundle: Objects, namespace: str, name: str) -> AgentSpec:
    """The spec kagent's controller would hand `namespace/name`'s runtime; ManifestError if it cannot."""
    index = Index.of(bundle.objects)
    agent = index.agents.get((namespace, name))
    if agent is None:
        raise ValueError(f"no Agent {namespace}/{name} in the bundle")
    spec, problems = resolve(index, agent)
    if spec is None:
        raise ManifestError(problems)
    return spec


def expand(bundle: B) -> B:
    """The bundle plus what kagent creates for each Agent; idempotent, unchanged without Agents."""
    index = Index.of(bundle.objects)
    if not index.agents:
        return bundle
    kept = [m for m in bundle.objects if not _generated(m)]
    declared = {(m.kind, m.namespace, m.name): m for m in kept}
    created: list[Manifest] = []
    problems: list[Problem] = []
    for key in sorted(index.agents):
        agent = index.agents[key]
        spec, found = resolve(index, agent)
        problems += found
        for kind in ("Deployment", "Service"):
            clash = declared.get((kind, agent.namespace, agent.name))
            if clash is not None:
                message = (
                    f"kagent creates {kind} {agent.ref} for this Agent; one is declared at {clash.source}"
                )
                problems.append(agent.manifest.problem(("metadata", "name"), message))
        if spec is None or problems:
            continue
        created += [_deployment(agent, spec, index), _service(agent)]
        if ("ServiceAccount", agent.namespace, agent.name) not in declared:
            created.append(_service_account(agent))
    if problems:
        raise ManifestError(problems)
    return bundle.replaced([*kept, *created])


def _generated(manifest: Manifest) -> bool:
    return manifest.kind in GENERATED_KINDS and manifest.labels.get(MANAGED_BY) == "kagent"


def _labels(agent: Agent) -> dict[str, str]:
    return {
        "app": "kagent",
        "app.kubernetes.io/managed-by": "kagent",
        "app.kubernetes.io/name": agent.name,
        "app.kubernetes.io/part-of": "kagent",
        "kagent": agent.name,
    }


def _selector(agent: Agent) -> dict[str, str]:
    return {"app": "kagent", "kagent": agent.name}


def _manifest(agent: Agent, api_version: str, kind: str, spec: dict[str, Any] | None) -> Manifest:
    metadata = {"name": agent.name, "namespace": agent.namespace, "labels": _labels(agent)}
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if spec is not None:
        body["spec"] = spec
    return Manifest(
        api_version=api_version,
        kind=kind,
        name=agent.name,
        namespace=agent.namespace,
        labels=_labels(agent),
        annotations={},
        body=body,
        source=agent.manifest.source,
    )


def _deployment(agent: Agent, spec: AgentSpec, index: Index) -> Manifest:
    env = [{"name": SPEC_ENV, "value": spec.to_json()}]
    config = index.model_configs[(agent.namespace, agent.model_config)]
    key = api_key(index, config)
    if key is not None:
        env.append({"name": key.env, "value": key.value})
    container = {
        "name": "kagent",
        "image": AGENT_IMAGE,
        "command": list(AGENT_COMMAND),
        "env": env,
        "ports": [{"name": "http", "containerPort": AGENT_PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": AGENT_PORT}},
    }
    return _manifest(
        agent,
        "apps/v1",
        "Deployment",
        {
            "replicas": 1,
            "selector": {"matchLabels": _selector(agent)},
            "template": {
                "metadata": {"labels": _labels(agent)},
                "spec": {"serviceAccountName": agent.service_account, "containers": [container]},
            },
        },
    )


def _service(agent: Agent) -> Manifest:
    port = {"name": "http", "port": AGENT_PORT, "targetPort": AGENT_PORT}
    return _manifest(
        agent, "v1", "Service", {"type": "ClusterIP", "selector": _selector(agent), "ports": [port]}
    )


def _service_account(agent: Agent) -> Manifest:
    return _manifest(agent, "v1", "ServiceAccount", None)
