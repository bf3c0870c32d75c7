"""The mTLS mode that PeerAuthentication gives one port of one workload.

Istio's precedence (`ComposePeerAuthentication` in istio `pilot/pkg/security/authn`):
the workload-level policy (selector, not in the root namespace) beats the namespace
policy, which beats the mesh policy (root namespace, no selector); UNSET inherits
from the level above; with nothing set the mode is PERMISSIVE. A port in the
workload policy's `portLevelMtls` overrides its mode for that port, UNSET inheriting
the workload's effective mode. When one level has several policies Istio takes the
oldest; we have no creation times, so the first declared wins.

In ambient, DISABLE behaves as PERMISSIVE (istiod only turns STRICT into a rule for
ztunnel), so `requires_mtls` is the question a node proxy actually asks.
"""

from __future__ import annotations

from collections.abc import Iterable

from trustusbank.manifests.istio.objects import ROOT_NAMESPACE, MtlsMode, PeerAuthentication, Workload


def mtls_mode(
    workload: Workload,
    port: int,
    peer_authns: Iterable[PeerAuthentication],
    root_namespace: str = ROOT_NAMESPACE,
) -> str:
    """STRICT, PERMISSIVE or DISABLE for connections to `port` of `workload`."""
    mesh = namespace = selected = None
    for pa in peer_authns:
        labelled = pa.selector is not None and bool(pa.selector.match_labels)
        if not labelled and pa.namespace == root_namespace:
            mesh = mesh or pa
        elif not labelled and pa.namespace == workload.namespace:
            namespace = namespace or pa
        elif (
            labelled
            and pa.namespace == workload.namespace != root_namespace
            and pa.selector is not None
            and pa.selector.selects(workload.labels)
        ):
            selected = selected or pa

    mode = MtlsMode.PERMISSIVE
    for level in (mesh, namespace, selected):
        if level is not None and level.mode != MtlsMode.UNSET:
            mode = level.mode
    if selected is not None:
        port_mode = dict(selected.port_level).get(port, MtlsMode.UNSET)
        if port_mode != MtlsMode.UNSET:
            mode = port_mode
    return mode.value


def requires_mtls(mode: str) -> bool:
    """Whether a plaintext connection must be refused; only STRICT does that, in ambient too."""
    return mode == MtlsMode.STRICT
