"""Which policies a proxy must consider: by workload for ztunnel, by target for a waypoint.

The two sets never overlap, as on a real cluster: a policy with `targetRefs` is never
given to ztunnel, and a waypoint never uses `selector` (istio
`pilot/pkg/model/policyattachment.go`, `ambient/workloads.go`).

ztunnel's selection (istiod's `buildWorkloadPolicies` plus ztunnel's policy store):
a policy in the root namespace without a selector applies to every workload; one
without a selector elsewhere, to every workload in its namespace; one with a selector,
to the workloads its labels select in its own namespace or, from the root namespace,
in any namespace. A selector with no labels is never attached to a workload: istiod
gives it workload scope and then keeps only policies whose label map is set.
"""

from __future__ import annotations

from collections.abc import Iterable

from trustusbank.manifests.istio.objects import ROOT_NAMESPACE, AuthorizationPolicy, TargetRef, Workload

GATEWAY_GROUP = "gateway.networking.k8s.io"
ISTIO_NETWORKING_GROUP = "networking.istio.io"


def applies_to(policy: AuthorizationPolicy, workload: Workload, root_namespace: str = ROOT_NAMESPACE) -> bool:
    """Whether ztunnel evaluates `policy` for connections to `workload`."""
    if policy.target_refs:
        return False
    if policy.selector is None:
        return policy.namespace in (root_namespace, workload.namespace)
    in_reach = policy.namespace in (root_namespace, workload.namespace)
    return in_reach and policy.selector.selects(workload.labels)


def policies_for_workload(
    policies: Iterable[AuthorizationPolicy], workload: Workload, root_namespace: str = ROOT_NAMESPACE
) -> list[AuthorizationPolicy]:
    """The policies ztunnel applies to `workload`, in a stable order (namespace, then name)."""
    chosen = [p for p in policies if applies_to(p, workload, root_namespace)]
    return sorted(chosen, key=lambda p: (p.namespace, p.name))


def _group(ref: TargetRef) -> str:
    # Kubernetes writes the core group as "" and Istio also accepts "core".
    return "" if ref.group in ("", "core") else ref.group


def policies_for_gateway(
    policies: Iterable[AuthorizationPolicy],
    name: str,
    namespace: str,
    *,
    gateway_class: str | None = None,
    root_namespace: str = ROOT_NAMESPACE,
) -> list[AuthorizationPolicy]:
    """Policies attached to the Gateway `namespace/name` (a waypoint is one), for its proxy to enforce.

    A `GatewayClass` target counts only from the root namespace, for gateways of that class.
    """
    result = []
    for p in policies:
        for ref in p.target_refs:
            same_ns = p.namespace == namespace and ref.namespace in ("", namespace)
            if same_ns and (_group(ref), ref.kind, ref.name) == (GATEWAY_GROUP, "Gateway", name):
                result.append(p)
                break
            if (
                gateway_class is not None
                and p.namespace == root_namespace
                and (_group(ref), ref.kind, ref.name) == (GATEWAY_GROUP, "GatewayClass", gateway_class)
            ):
                result.append(p)
                break
    return sorted(result, key=lambda p: (p.namespace, p.name))


def policies_for_service(
    policies: Iterable[AuthorizationPolicy], name: str, namespace: str, *, kind: str = "Service"
) -> list[AuthorizationPolicy]:
    """Policies attached to a Service (or, with `kind="ServiceEntry"`, a ServiceEntry) in `namespace`.

    The waypoint that serves that Service enforces them on traffic addressed to it.
    """
    group = "" if kind == "Service" else ISTIO_NETWORKING_GROUP
    result = [
        p
        for p in policies
        if p.namespace == namespace
        and any(
            (_group(r), r.kind, r.name) == (group, kind, name) and r.namespace in ("", namespace)
            for r in p.target_refs
        )
    ]
    return sorted(result, key=lambda p: (p.namespace, p.name))
