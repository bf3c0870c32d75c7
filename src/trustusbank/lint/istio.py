"""AuthorizationPolicy checks: what ztunnel (or a waypoint) will actually enforce.

The rules of istiod's conversion for ztunnel are not re-derived here: `mesh.authz`
(`ztunnel_view`) owns them and says, per rule and field, what is lost. This module
turns that into lint findings and adds what needs the rest of the input to see: which
namespaces are enrolled in ambient, which workloads a selector picks, whether a
`targetRefs` policy has a waypoint to run on, and the write-up's two shapes that look
like a defence and are not (a DENY on `to.operation.hosts` meant as egress control,
and an L7 "pre-call block" selecting the gateway's own pod).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from trustusbank.lint.findings import Emitter, Finding, Severity
from trustusbank.manifests.core import Namespace
from trustusbank.manifests.manifest import Manifest
from trustusbank.mesh.authz import ROOT_NAMESPACE, Action, AuthorizationPolicy, Rule, ztunnel_view
from trustusbank.mesh.authz import Finding as AuthzFinding
from trustusbank.mesh.authz.l4 import (
    DENY_NO_EFFECT,
    HTTP_OPERATION_FIELDS,
    HTTP_SOURCE_FIELDS,
    L4_WHEN_KEYS,
    ZtunnelView,
)

KIND = "AuthorizationPolicy"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
WAYPOINT_LABEL = "istio.io/use-waypoint"
OFF_MESH = (
    "an off-mesh destination needs an egress waypoint with a ServiceEntry, or a Kubernetes NetworkPolicy"
)


@dataclass(frozen=True)
class Pod:
    """A workload a selector can pick: a Deployment's pods, or a Gateway's proxy pods."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    gateway: bool = False


def gateway_pod(gateway: Manifest) -> Pod:
    """The labels the agentgateway controller puts on a Gateway's pods (its helm `selectorLabels`)."""
    name = gateway.name
    spec = gateway.body.get("spec") or {}
    labels = {
        GATEWAY_NAME_LABEL: name,
        "gateway.networking.k8s.io/gateway-class-name": str(spec.get("gatewayClassName") or ""),
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
    }
    return Pod(name, gateway.namespace or "default", labels, gateway=True)


@dataclass(frozen=True)
class Context:
    """What the rest of the input says about where policies land."""

    namespaces: Mapping[str, Namespace]
    pods: Sequence[Pod]
    has_deployments: bool
    gateways: Sequence[Manifest]
    services: Sequence[Manifest]

    def gateway(self, namespace: str, name: str) -> Manifest | None:
        return next(
            (g for g in self.gateways if ((g.namespace or "default"), g.name) == (namespace, name)), None
        )

    def service(self, namespace: str, name: str) -> Manifest | None:
        return next(
            (s for s in self.services if ((s.namespace or "default"), s.name) == (namespace, name)), None
        )


def check_policy(manifest: Manifest, context: Context) -> list[Finding]:
    """Every finding for one AuthorizationPolicy."""
    policy = AuthorizationPolicy.from_manifest(manifest)
    emit = Emitter(manifest, policy.ref)
    view = ztunnel_view(policy)
    if policy.target_refs:
        return list(_target_ref_findings(policy, context, emit))
    egress = list(_egress_misreading(policy, view, context, emit))
    findings = egress + list(_ztunnel_findings(policy, view, context, emit, {f.rule for f in egress}))
    findings += _enrolment(policy, context, emit)
    findings += _selector(policy, context, emit)
    return findings


# --- what istiod hands ztunnel ---------------------------------------------------------------


def _is_http(finding: AuthzFinding) -> bool:
    if finding.rule is None:
        return False
    if finding.field in HTTP_OPERATION_FIELDS or finding.field in HTTP_SOURCE_FIELDS:
        return True
    return len(finding.path) >= 2 and finding.path[-1] == "key" and "when" in finding.path


def _ztunnel_findings(
    policy: AuthorizationPolicy,
    view: ZtunnelView,
    context: Context,
    emit: Emitter,
    explained: set[int | None],
) -> Iterator[Finding]:
    """Per rule with HTTP fields, one finding; `explained` rules already have a more specific one."""
    http: dict[int, list[AuthzFinding]] = {}
    for finding in view.findings:
        if _is_http(finding):
            assert finding.rule is not None
            http.setdefault(finding.rule, []).append(finding)
    status = f"istiod reports: {view.status}" if view.status else ""
    for index, found in sorted(http.items()):
        if index in explained:
            continue
        yield _http_rule(policy, index, found, status, context, emit)
    for finding in view.findings:
        if not _is_http(finding):
            mapped = _other(policy, view, finding, emit)
            if mapped is not None:
                yield mapped


def _http_rule(
    policy: AuthorizationPolicy,
    index: int,
    found: list[AuthzFinding],
    status: str,
    context: Context,
    emit: Emitter,
) -> Finding:
    names = ", ".join(f"`{f.field}`" for f in found)
    what = (
        f"{names} {'is an HTTP attribute' if len(found) == 1 else 'are HTTP attributes'} ztunnel cannot see"
    )
    path = found[0].path
    if policy.action != Action.DENY:
        return emit(
            path,
            Severity.ERROR,
            "istio-allow-rule-dropped",
            f"{what}: this rule is dropped by istiod for ztunnel: nothing it allows is allowed",
            _join(status, "The connections it was written to admit are denied"),
            index,
        )
    single = dataclasses.replace(policy, rules=(policy.rules[index],))
    enforced = ztunnel_view(single).enforced
    if enforced is None or not enforced.has_effective_rules:
        return emit(
            path,
            Severity.ERROR,
            "istio-deny-rule-no-effect",
            f"{what}: without {'it' if len(found) == 1 else 'them'} this DENY rule has an empty clause, "
            "which ztunnel skips: the rule never matches and blocks nothing",
            _join(status, "Every connection it was written to block goes through"),
            index,
        )
    l4 = describe_l4(policy.rules[index], _targets(policy, context))
    gateway = _selected_gateway(policy, context)
    advice = ""
    if gateway is not None:
        advice = (
            f"; it selects the pod of Gateway {gateway}, so all traffic through that proxy on those ports "
            f"stops. To block at L7, attach it to the waypoint with `targetRefs: [{{group: "
            f"gateway.networking.k8s.io, kind: Gateway, name: {gateway.split('/')[1]}}}]`, which sees "
            "paths and methods"
        )
    return emit(
        path,
        Severity.ERROR,
        "istio-deny-rule-broadened",
        f"{what}: at ztunnel it denies more than written: {l4}",
        _join(status, f"Only the L4 part is enforced{advice}"),
        index,
    )


def _other(
    policy: AuthorizationPolicy, view: ZtunnelView, finding: AuthzFinding, emit: Emitter
) -> Finding | None:
    """The rest of `mesh.authz`'s findings, with a severity and what the cluster does."""
    path = finding.path
    if finding.field in ("principals", "notPrincipals") and "spiffe://" in finding.message:
        return emit(
            path,
            Severity.ERROR,
            "istio-spiffe-principal",
            finding.message,
            "ztunnel compares principals without the `spiffe://` prefix: this value never matches",
            finding.rule,
        )
    if finding.field in ("principals", "notPrincipals", "namespaces", "notNamespaces"):
        return emit(
            path, Severity.WARNING, "istio-infix-wildcard", finding.message, "never matches", finding.rule
        )
    if finding.field in ("trustDomains", "notTrustDomains"):
        message = finding.message
        return emit(path, Severity.WARNING, "istio-trust-domains-ignored", message, message, finding.rule)
    if finding.field == "rule":
        return emit(path, Severity.ERROR, "istio-rule-never-matches", finding.message, "", finding.rule)
    if finding.field == "rules" and policy.action == Action.ALLOW:
        return emit(
            path,
            Severity.ERROR,
            "istio-allow-denies-all",
            "no rule of this ALLOW policy survives at ztunnel, yet the policy exists",
            finding.message,
        )
    if finding.field == "rules" and finding.message != DENY_NO_EFFECT:
        return emit(path, Severity.ERROR, "istio-deny-no-effect", finding.message, "blocks nothing")
    if finding.field == "action" and policy.action == Action.CUSTOM:
        return emit(
            path,
            Severity.ERROR,
            "istio-custom-at-ztunnel",
            "CUSTOM is not supported by ztunnel (istiod: "
            f"'{view.status}'); without targetRefs to a waypoint it is not enforced",
            "istiod does not send it to ztunnel, so the external authorizer is never asked: it protects "
            "nothing. Attach it to a waypoint with `targetRefs`",
        )
    if finding.field == "action":
        return emit(path, Severity.INFO, "istio-audit", finding.message, f"istiod: {view.status}")
    if finding.field == "selector":
        return emit(path, Severity.WARNING, "istio-empty-selector", finding.message, "applies to no workload")
    if finding.field == "metadata.annotations":
        return emit(path, Severity.INFO, "istio-dry-run", finding.message, "never enforced")
    return None


def _join(*parts: str) -> str:
    """Sentences, each ending in one full stop (istiod's status texts already end in one)."""
    sentences = [p.rstrip(".") for p in parts if p]
    return ". ".join(sentences) + "." if sentences else ""


# --- L4 remainder, in words -------------------------------------------------------------------


def describe_l4(rule: Rule, targets: str) -> str:
    """The connections a DENY rule still matches once its HTTP fields are gone."""
    sources = []
    for source in rule.sources:
        parts = []
        for label, values in (
            ("principals", source.principals),
            ("namespaces", source.namespaces),
            ("service accounts", source.service_accounts),
            ("IPs", source.ip_blocks),
        ):
            if values:
                parts.append(f"{label} {', '.join(values)}")
        for label, values in (
            ("principals", source.not_principals),
            ("namespaces", source.not_namespaces),
            ("service accounts", source.not_service_accounts),
            ("IPs", source.not_ip_blocks),
        ):
            if values:
                parts.append(f"any but {label} {', '.join(values)}")
        if parts:
            sources.append(" and ".join(parts))
    ports = [p for op in rule.operations for p in op.ports]
    not_ports = [p for op in rule.operations for p in op.not_ports]
    when = [c for c in rule.conditions if c.key in L4_WHEN_KEYS]
    destination = targets
    if ports:
        destination = f"port{'s' * (len(ports) > 1)} {', '.join(ports)} of {targets}"
    elif not_ports:
        destination = f"any port but {', '.join(not_ports)} of {targets}"
    text = f"ALL traffic from {' or '.join(sources) if sources else 'any source'} to {destination}"
    for condition in when:
        text += f", when {condition.key} is {', '.join(condition.values or condition.not_values)}"
    return text


def _targets(policy: AuthorizationPolicy, context: Context) -> str:
    if policy.selector is not None and policy.selector.match_labels:
        labels = ", ".join(f"{k}={v}" for k, v in policy.selector.match_labels)
        return f"the workloads selected by {labels}"
    if policy.namespace == ROOT_NAMESPACE:
        return "every workload in the mesh"
    return f"every workload in namespace {policy.namespace}"


def _selected_gateway(policy: AuthorizationPolicy, context: Context) -> str | None:
    """The Gateway whose proxy pod this policy selects, by its labels or, failing that, by name."""
    if policy.selector is None:
        return None
    for pod in context.pods:
        if pod.gateway and pod.namespace == policy.namespace and policy.selector.selects(pod.labels):
            return f"{pod.namespace}/{pod.name}"
    for gateway in context.gateways:
        same_ns = (gateway.namespace or "default") == policy.namespace
        if same_ns and gateway.name in policy.selector.labels.values():
            return f"{policy.namespace}/{gateway.name}"
    return None


# --- where it is enforced ---------------------------------------------------------------------


def _enrolment(policy: AuthorizationPolicy, context: Context, emit: Emitter) -> Iterator[Finding]:
    """A policy in a namespace ztunnel does not capture has no enforcement point."""
    namespace = context.namespaces.get(policy.namespace)
    if namespace is None or namespace.ambient or policy.namespace == ROOT_NAMESPACE:
        return
    label = "`istio.io/dataplane-mode: ambient`"
    if policy.action == Action.DENY:
        yield emit(
            ("metadata", "namespace"),
            Severity.ERROR,
            "istio-deny-not-enrolled",
            f"nothing enforces this: namespace {policy.namespace} is not enrolled in ambient ({label} "
            "missing), and policies are enforced by the destination's ztunnel",
            f"no ztunnel stands in front of {policy.namespace}'s pods, so this DENY blocks nothing; enrol "
            f"the namespace, or ({OFF_MESH})",
        )
    else:
        # Like a DENY that blocks nothing, a policy nothing enforces is an error: it reads as protection.
        yield emit(
            ("metadata", "namespace"),
            Severity.ERROR,
            "istio-not-enrolled",
            f"namespace {policy.namespace} is not enrolled in ambient ({label} missing): "
            "no enforcement point",
            "ztunnel does not capture these pods and this project runs no sidecars: "
            "the policy is not enforced",
        )


def _selector(policy: AuthorizationPolicy, context: Context, emit: Emitter) -> Iterator[Finding]:
    """A selector that picks no workload, judged only when the input has workloads to pick from."""
    if policy.selector is None or not policy.selector.match_labels or not context.has_deployments:
        return
    reach = [p for p in context.pods if policy.namespace in (ROOT_NAMESPACE, p.namespace)]
    if any(policy.selector.selects(p.labels) for p in reach):
        return
    labels = ", ".join(f"{k}={v}" for k, v in policy.selector.match_labels)
    where = "any namespace" if policy.namespace == ROOT_NAMESPACE else f"namespace {policy.namespace}"
    yield emit(
        ("spec", "selector"),
        Severity.WARNING,
        "istio-selector-matches-nothing",
        f"selector {labels} matches no Deployment or Gateway pod in {where} in the input",
        "the policy applies to no workload",
    )


_HOST = re.compile(
    r"^(?P<svc>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.svc(\..*)?)?$"
)


def _egress_misreading(
    policy: AuthorizationPolicy, view: ZtunnelView, context: Context, emit: Emitter
) -> Iterator[Finding]:
    """A DENY that selects a workload and names another service in `hosts`, read as "deny egress".

    Istio has no egress form of AuthorizationPolicy: it is enforced by the destination, so
    the selected workload is what is protected, and `hosts` (L7) is dropped at ztunnel.
    """
    if policy.action != Action.DENY or policy.selector is None:
        return
    for index, rule in enumerate(policy.rules):
        for j, operation in enumerate(rule.operations):
            for k, host in enumerate(operation.hosts):
                match = _HOST.match(host)
                if match is None or match["ns"] == policy.namespace:
                    continue
                destination = match["ns"]
                labels = ", ".join(f"{a}={b}" for a, b in policy.selector.match_labels)
                status = f"istiod reports: {view.status}" if view.status else ""
                ns_view = context.namespaces.get(destination)
                enrolment = ""
                if ns_view is not None and not ns_view.ambient:
                    enrolment = (
                        f"{destination} is not enrolled in ambient either, so even that needs the namespace "
                        f"enrolled ({OFF_MESH})"
                    )
                yield emit(
                    ("spec", "rules", index, "to", j, "operation", "hosts", k),
                    Severity.ERROR,
                    "istio-deny-egress-misread",
                    f"this DENY selects {labels} as the *destination* (AuthorizationPolicy is enforced by "
                    f"the destination's ztunnel, never on egress), and `hosts` is L7: it blocks nothing, "
                    f"neither traffic to {host} nor into the selected pods",
                    _join(
                        status,
                        "The exfiltration it was written to stop goes through",
                        f"What works: a DENY in {destination} with `from.source.namespaces: "
                        f"[{policy.namespace}]` (as deploy's deny-bank-to-attacker does), enforced by "
                        f"{destination}'s ztunnel",
                        enrolment,
                    ),
                    index,
                )


def _target_ref_findings(policy: AuthorizationPolicy, context: Context, emit: Emitter) -> Iterator[Finding]:
    """A `targetRefs` policy runs only on the target's waypoint (or gateway); is there one?"""
    for index, ref in enumerate(policy.target_refs):
        path = ("spec", "targetRefs", index)
        group = "" if ref.group in ("", "core") else ref.group
        if (group, ref.kind) == ("gateway.networking.k8s.io", "Gateway"):
            known = policy.namespace in context.namespaces or context.gateways
            if context.gateway(policy.namespace, ref.name) is None and known:
                yield emit(
                    path,
                    Severity.WARNING,
                    "istio-target-no-waypoint",
                    f"targets Gateway {policy.namespace}/{ref.name}, which is not in the input",
                    "without that Gateway's proxy nothing enforces this policy (ztunnel never receives "
                    "targetRefs policies)",
                )
        elif (group, ref.kind) == ("", "Service"):
            waypoint = _service_waypoint(policy.namespace, ref.name, context)
            if waypoint is None and policy.namespace in context.namespaces:
                yield emit(
                    path,
                    Severity.WARNING,
                    "istio-target-no-waypoint",
                    f"targets Service {policy.namespace}/{ref.name}, which no waypoint serves (no "
                    f"`{WAYPOINT_LABEL}` on the Service or its namespace)",
                    "ztunnel never receives targetRefs policies and no waypoint handles this Service's "
                    "traffic: nothing enforces it",
                )
            elif (
                waypoint is not None
                and context.gateway(policy.namespace, waypoint) is None
                and context.gateways
            ):
                yield emit(
                    path,
                    Severity.WARNING,
                    "istio-target-no-waypoint",
                    f"targets Service {policy.namespace}/{ref.name}, whose waypoint {waypoint} is not in "
                    "the input",
                    "without the waypoint nothing enforces this policy",
                )


def _service_waypoint(namespace: str, name: str, context: Context) -> str | None:
    service = context.service(namespace, name)
    label = service.labels.get(WAYPOINT_LABEL) if service is not None else None
    ns = context.namespaces.get(namespace)
    waypoint = label or (ns.use_waypoint if ns is not None else None)
    return None if waypoint in (None, "none") else waypoint
