"""Policy evaluation: Istio AuthorizationPolicy / PeerAuthentication and agentgateway CEL.

The policies as written are `manifests/istio/` and `manifests/gateway/`. Here: `match` is
ztunnel's matching; `scope` says which proxy enforces which policy; `evaluate` is the inbound
decision; `l4` is what istiod hands ztunnel and what is lost on the way (the linter's findings);
`l7` is a waypoint's evaluation of the same policies with their HTTP fields; `peer_authn` the
mTLS mode; `cel` agentgateway's CEL authorization, on the one attribute table in
`cel_attributes` that `policy lint` reads too.
"""

from __future__ import annotations

from trustusbank.manifests.istio.objects import (
    ROOT_NAMESPACE,
    Action,
    AuthorizationPolicy,
    Condition,
    Connection,
    MtlsMode,
    Operation,
    PeerAuthentication,
    PeerIdentity,
    Rule,
    Selector,
    Source,
    TargetRef,
    Workload,
)
from trustusbank.mesh.authz.evaluate import Decision, authorize
from trustusbank.mesh.authz.l4 import Finding, ZtunnelView, ztunnel_view
from trustusbank.mesh.authz.match import L4Match, Scope, StringMatch, ZtunnelPolicy
from trustusbank.mesh.authz.peer_authn import mtls_mode, requires_mtls
from trustusbank.mesh.authz.scope import (
    applies_to,
    policies_for_gateway,
    policies_for_service,
    policies_for_workload,
)

__all__ = [
    "ROOT_NAMESPACE",
    "Action",
    "AuthorizationPolicy",
    "Condition",
    "Connection",
    "Decision",
    "Finding",
    "L4Match",
    "MtlsMode",
    "Operation",
    "PeerAuthentication",
    "PeerIdentity",
    "Rule",
    "Scope",
    "Selector",
    "Source",
    "StringMatch",
    "TargetRef",
    "Workload",
    "ZtunnelPolicy",
    "ZtunnelView",
    "applies_to",
    "authorize",
    "mtls_mode",
    "policies_for_gateway",
    "policies_for_service",
    "policies_for_workload",
    "requires_mtls",
    "ztunnel_view",
]
