"""Who enforces each kagent AccessPolicy, said per runtime, because on kagent OSS nothing does.

AccessPolicy is a kagent Enterprise CRD: on the embedded runtime the agent enforces it on every
A2A request; on kagent Enterprise the agent's waypoint does; on kagent OSS nothing reads it,
and it is enforced only if the AuthorizationPolicies `trustusbank manifests oss-access`
renders are applied (ztunnel, by SPIFFE principal: `manifests/kagent/oss.py`). A UserGroup
subject is a claim of the caller's JWT, which ztunnel never sees: it cannot be enforced on OSS.
"""

from __future__ import annotations

from collections.abc import Iterable

from trustusbank.lint.findings import Emitter, Finding, Severity
from trustusbank.lint.istio import Pod
from trustusbank.manifests.kagent.objects import Index
from trustusbank.manifests.kagent.oss import (
    RENDER_COMMAND,
    pod_selector,
    user_group_effect,
    user_group_subjects,
)
from trustusbank.manifests.manifest import Manifest

ENFORCEMENT = (
    "enforced by the agent (embedded runtime), by its waypoint (kagent Enterprise); on kagent OSS "
    "only by the AuthorizationPolicies `{command}` renders"
)
ON_CLUSTER = "kagent OSS ignores AccessPolicy: unless those are applied, every caller the mesh admits gets in"


def check(manifests: Iterable[Manifest]) -> list[Finding]:
    index = Index.of(manifests, lenient=True)
    findings = [
        Emitter(policy.manifest)(
            ("spec", "targetRef"),
            Severity.INFO,
            "oss-access-enforcement",
            ENFORCEMENT.format(command=RENDER_COMMAND),
            ON_CLUSTER.format(command=RENDER_COMMAND),
        )
        for policy in index.access_policies
        if policy.target_kind == "Agent"
    ]
    findings += [
        Emitter(policy.manifest)(
            ("spec", "from", "subjects", subject.index),
            Severity.WARNING,
            "oss-access-user-group",
            f"{subject.describe()} cannot be enforced on kagent OSS: a group is a claim of the caller's "
            "token, which ztunnel never sees (it needs RequestAuthentication at a waypoint)",
            f"kagent OSS: {user_group_effect(policy)}",
        )
        for policy, subject in user_group_subjects(index)
    ]
    return findings


def agent_pods(manifests: Iterable[Manifest]) -> list[Pod]:
    """The pods kagent runs for the input's Agents (no Deployment declares them), with the labels
    they are known to carry, so that a selector on an agent does not read as matching nothing."""
    agents = Index.of(manifests, lenient=True).agents.values()
    return [Pod(a.name, a.namespace, pod_selector(a.name)) for a in agents]
