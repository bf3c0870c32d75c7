"""The inbound decision ztunnel makes for one connection, at the destination (ztunnel `assert_rbac`).

Order, as ztunnel and Istio's reference define it: a DENY policy that matches denies;
otherwise, if no ALLOW policy applies to the workload, the connection is allowed;
otherwise one ALLOW policy must match.

Only ALLOW and DENY policies take part. istiod sends ztunnel nothing else: for AUDIT
and CUSTOM it writes the status "ztunnel does not support the <ACTION> action" and
leaves the policy out (istio/istio `pilot/pkg/serviceregistry/ambient/authorization.go`).
So, as on a cluster, a CUSTOM policy protects nothing at ztunnel and an AUDIT policy
records nothing there: `trustusbank policy lint` reports the CUSTOM one as an error.

Anything unexpected while deciding denies, naming the error: a policy engine that
allows when it cannot decide is an open door.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from trustusbank.manifests.istio.objects import (
    ROOT_NAMESPACE,
    Action,
    AuthorizationPolicy,
    Connection,
    Workload,
)
from trustusbank.mesh.authz.l4 import convert
from trustusbank.mesh.authz.match import ZtunnelPolicy
from trustusbank.mesh.authz.scope import policies_for_workload

logger = logging.getLogger(__name__)

# ztunnel's own texts (src/proxy.rs, src/state.rs), so access logs read like a real ztunnel's.
DENIED_FMT = "explicitly denied by: {ref}"
NOT_ALLOWED = "allow policies exist, but none allowed"
NO_ALLOW_POLICIES = "no allow policies, allow"
ALLOWED_FMT = "allowed by: {ref}"
ERROR_FMT = "authorization failed closed: {error}"
FAILED_CLOSED = "authorization failed closed"
STRICT_REFUSAL = "plaintext refused, PeerAuthentication mode is STRICT"
# Reasons with no variable part, which a metric label may carry as they are.
FIXED_REASONS = frozenset({NOT_ALLOWED, STRICT_REFUSAL})


@dataclass(frozen=True)
class Decision:
    """`reason` goes verbatim into the access log; `policy` is `<ns>/<name>` of the deciding policy."""

    allowed: bool
    reason: str
    policy: str | None = None
    dry_run: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{'allow' if self.allowed else 'deny'}: {self.reason}"

    @property
    def metric_reason(self) -> str:
        """The reason as a metric label: ztunnel's text, without an error's detail (bounded values).

        An alert's annotation quotes it, so a deny no policy named reads as what happened
        ("allow policies exist, but none allowed"), never as "denied by none".
        """
        if self.policy is not None:
            return DENIED_FMT.format(ref=self.policy)
        return self.reason if self.reason in FIXED_REASONS else FAILED_CLOSED


def authorize(
    conn: Connection,
    workload: Workload,
    policies: Iterable[AuthorizationPolicy],
    root_namespace: str = ROOT_NAMESPACE,
) -> Decision:
    """Decide one inbound connection to `workload` under `policies` (all of the mesh's; we select)."""
    try:
        return _authorize(conn, workload, policies, root_namespace)
    except Exception as error:
        text = f"{type(error).__name__}: {error}"
        logger.exception(
            "authorization error for a connection to %s/%s; denying", workload.namespace, workload.name
        )
        return Decision(False, ERROR_FMT.format(error=text))


def _authorize(
    conn: Connection, workload: Workload, policies: Iterable[AuthorizationPolicy], root_namespace: str
) -> Decision:
    applicable = policies_for_workload(policies, workload, root_namespace)
    # AUDIT and CUSTOM are never sent to ztunnel: they are not part of its decision.
    enforced = [
        _enforced(p, p.action, root_namespace) for p in applicable if p.action in (Action.ALLOW, Action.DENY)
    ]
    dry_run = tuple(z.ref for z in enforced if z.dry_run and z.matches(conn))
    live = [z for z in enforced if not z.dry_run]
    return _decide(conn, live, dry_run)


@functools.lru_cache(maxsize=4096)
def _enforced(policy: AuthorizationPolicy, action: Action, root_namespace: str) -> ZtunnelPolicy:
    # Policies are frozen and hashable, and every connection would otherwise convert them again.
    return convert(policy, action, root_namespace)[0]


def _decide(conn: Connection, live: list[ZtunnelPolicy], dry_run: tuple[str, ...]) -> Decision:
    for policy in live:
        if policy.action == Action.DENY and policy.matches(conn):
            return Decision(False, DENIED_FMT.format(ref=policy.ref), policy.ref, dry_run)
    allows = [p for p in live if p.action == Action.ALLOW]
    if not allows:
        return Decision(True, NO_ALLOW_POLICIES, None, dry_run)
    for policy in allows:
        if policy.matches(conn):
            return Decision(True, ALLOWED_FMT.format(ref=policy.ref), policy.ref, dry_run)
    return Decision(False, NOT_ALLOWED, None, dry_run)
