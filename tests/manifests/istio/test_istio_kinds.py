"""AuthorizationPolicy and PeerAuthentication as bundle kinds, and the mTLS mode PeerAuthentication gives.

Validation says, at the offending line, what a cluster would refuse (the CRD schema and
istio's webhook) and what it would silently prune (unknown fields).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trustusbank.manifests.bundle import check_bundle, load_bundle
from trustusbank.manifests.kinds import known_kinds
from trustusbank.mesh.authz import (
    Action,
    AuthorizationPolicy,
    MtlsMode,
    Operation,
    PeerAuthentication,
    Rule,
    Selector,
    Source,
    TargetRef,
    Workload,
    mtls_mode,
    requires_mtls,
)

NAMESPACES = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
"""

POLICY = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-agents
  namespace: shop
  annotations:
    ticket: SEC-1
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
    - from:
        - source:
            principals: ["cluster.local/ns/agents/sa/support-bot"]
            notNamespaces: [vendors]
      to:
        - operation:
            ports: ["8000"]
            methods: [GET]
      when:
        - key: source.ip
          values: [10.0.0.0/8]
"""

PEER_AUTHN = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: api
  namespace: shop
spec:
  selector:
    matchLabels:
      app: api
  mtls:
    mode: STRICT
  portLevelMtls:
    9090:
      mode: PERMISSIVE
"""


def problems(root: Path, **files: str) -> list[tuple[int, str]]:
    (root / "00-namespaces.yaml").write_text(NAMESPACES)
    for name, text in files.items():
        (root / f"{name}.yaml").write_text(text)
    return [(p.line, p.message) for p in check_bundle(root).problems]


def spec_problem(tmp_path: Path, spec: str, kind: str = "AuthorizationPolicy") -> list[tuple[int, str]]:
    """Problems for a policy whose spec is `spec` (indented under `spec:` on line 6)."""
    head = f"apiVersion: security.istio.io/v1\nkind: {kind}\nmetadata:\n  name: p\n  namespace: shop\nspec:\n"
    body = "".join(f"  {line}\n" for line in spec.strip("\n").splitlines())
    return problems(tmp_path, p=head + body)


# --- registration and typed views ---------------------------------------------------------------


def test_both_kinds_are_known_in_v1_and_v1beta1() -> None:
    kinds = known_kinds()

    for kind in ("AuthorizationPolicy", "PeerAuthentication"):
        assert f"{kind} (security.istio.io/v1)" in kinds
        assert f"{kind} (security.istio.io/v1beta1)" in kinds


def test_policy_loads_as_typed_view(tmp_path: Path) -> None:
    problems(tmp_path, policy=POLICY)
    bundle = load_bundle(tmp_path)

    view = bundle.view("AuthorizationPolicy", "shop", "allow-agents")

    assert view == AuthorizationPolicy(
        name="allow-agents",
        namespace="shop",
        action=Action.ALLOW,
        selector=Selector.of({"app": "api"}),
        rules=(
            Rule(
                sources=(
                    Source(
                        principals=("cluster.local/ns/agents/sa/support-bot",), not_namespaces=("vendors",)
                    ),
                ),
                operations=(Operation(ports=("8000",), methods=("GET",)),),
                conditions=view.rules[0].conditions,
            ),
        ),
    )
    assert isinstance(view, AuthorizationPolicy)
    assert (view.rules[0].conditions[0].key, view.rules[0].conditions[0].values) == (
        "source.ip",
        ("10.0.0.0/8",),
    )
    assert view.ref == "shop/allow-agents"
    assert view.manifest is not None
    assert view.manifest.path_line(("spec", "rules", 0, "to")) == 18


def test_v1beta1_and_target_refs(tmp_path: Path) -> None:
    text = """\
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: on-waypoint
  namespace: shop
spec:
  targetRefs:
    - kind: Gateway
      group: gateway.networking.k8s.io
      name: waypoint
  action: CUSTOM
  provider:
    name: opa
  rules:
    - {}
"""
    assert problems(tmp_path, waypoint=text) == []
    view = load_bundle(tmp_path).view("AuthorizationPolicy", "shop", "on-waypoint")

    assert isinstance(view, AuthorizationPolicy)
    assert view.target_refs == (TargetRef("Gateway", "waypoint", "gateway.networking.k8s.io"),)
    assert (view.action, view.provider) == (Action.CUSTOM, "opa")


def test_default_deny_spec_is_valid(tmp_path: Path) -> None:
    assert spec_problem(tmp_path, "{}") == []


def test_peer_authentication_loads_as_typed_view(tmp_path: Path) -> None:
    assert problems(tmp_path, pa=PEER_AUTHN) == []

    view = load_bundle(tmp_path).view("PeerAuthentication", "shop", "api")

    assert view == PeerAuthentication(
        "api", "shop", MtlsMode.STRICT, Selector.of({"app": "api"}), ((9090, MtlsMode.PERMISSIVE),)
    )


# --- strict schema: unknown fields and types, with path and line ----------------------------------


def test_misspelt_field_is_reported_with_path_and_suggestion(tmp_path: Path) -> None:
    broken = POLICY.replace("principals:", "principal:")

    assert problems(tmp_path, policy=broken) == [
        (
            16,
            "AuthorizationPolicy allow-agents: spec.rules[0].from[0].source.principal: "
            "unknown field (did you mean 'principals'?)",
        )
    ]


def test_unknown_top_level_spec_field(tmp_path: Path) -> None:
    assert spec_problem(tmp_path, "actions: DENY") == [
        (7, "AuthorizationPolicy p: spec.actions: unknown field (did you mean 'action'?)")
    ]


def test_metadata_is_checked_like_any_kubernetes_object(tmp_path: Path) -> None:
    broken = POLICY.replace("  annotations:", "  annotation:")

    assert problems(tmp_path, policy=broken) == [
        (
            6,
            "AuthorizationPolicy allow-agents: metadata.annotation: "
            "unknown field (did you mean 'annotations'?)",
        )
    ]


def test_port_written_as_a_number(tmp_path: Path) -> None:
    broken = POLICY.replace('ports: ["8000"]', "ports: [8000]")

    assert problems(tmp_path, policy=broken) == [
        (
            20,
            "AuthorizationPolicy allow-agents: spec.rules[0].to[0].operation.ports[0]: "
            "expected string, got integer",
        )
    ]


def test_action_must_be_upper_case(tmp_path: Path) -> None:
    [(line, message)] = spec_problem(tmp_path, "action: deny\nrules: [{}]")

    assert line == 7
    assert message.startswith("AuthorizationPolicy p: spec.action: 'deny' is not one of ['ALLOW', 'DENY'")


def test_peer_authentication_unknown_mode(tmp_path: Path) -> None:
    [(line, message)] = spec_problem(tmp_path, "mtls:\n  mode: STRICTER", kind="PeerAuthentication")

    assert line == 8
    assert message.startswith("PeerAuthentication p: spec.mtls.mode: 'STRICTER' is not one of")


# --- what the webhook refuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "line", "expected"),
    [
        (
            "selector: {matchLabels: {app: a}}\ntargetRefs: [{kind: Service, name: a}]",
            6,
            "spec: only one of targetRefs or selector can be set",
        ),
        (
            "selector: {matchLabels: {app: '*'}}",
            7,
            "spec.selector.matchLabels.app: wildcard is not supported",
        ),
        (
            "targetRefs: [{kind: Service, name: a, namespace: other}]",
            7,
            "spec.targetRefs[0].namespace: targetRef namespace must not be set",
        ),
        (
            "targetRefs: [{kind: Deployment, group: apps, name: a}]",
            7,
            "spec.targetRefs[0].kind: targetRef must be",
        ),
        ("action: DENY", 6, "spec: DENY action without `rules` is meaningless"),
        ("action: DENY\nrules: []", 6, "spec: DENY action without `rules` is meaningless"),
        ("action: CUSTOM\nprovider: {name: opa}", 6, "spec: CUSTOM action without `rules` is meaningless"),
        ("action: CUSTOM\nrules: [{}]", 6, "spec.provider.name: `provider.name` must not be empty"),
        (
            "provider: {name: opa}\nrules: [{}]",
            7,
            "spec.provider: `provider` must not be with non CUSTOM action",
        ),
        ("rules:\n  - from: []", 8, "spec.rules[0].from: `from` must not be empty"),
        ("rules:\n  - from: [{}]", 8, "spec.rules[0].from[0].source: `from.source` must not be nil"),
        (
            "rules:\n  - from: [{source: {}}]",
            8,
            "spec.rules[0].from[0].source: `from.source` must not be empty",
        ),
        (
            "rules:\n  - to: [{operation: {}}]",
            8,
            "spec.rules[0].to[0].operation: `to.operation` must not be empty",
        ),
        (
            "rules:\n  - from: [{source: {principals: ['']}}]",
            8,
            "spec.rules[0].from[0].source.principals[0]: empty value not allowed",
        ),
        (
            "rules:\n  - from: [{source: {namespaces: [a], serviceAccounts: [b]}}]",
            8,
            "spec.rules[0].from[0].source: cannot set serviceAccounts with namespaces or principals",
        ),
        (
            "rules:\n  - from: [{source: {serviceAccounts: ['ns/*']}}]",
            8,
            "spec.rules[0].from[0].source.serviceAccounts[0]: wildcard not allowed",
        ),
        (
            "rules:\n  - from: [{source: {serviceAccounts: [a/b/c]}}]",
            8,
            "spec.rules[0].from[0].source.serviceAccounts[0]: expected format",
        ),
        (
            "rules:\n  - from: [{source: {ipBlocks: [10.0.0.0/33]}}]",
            8,
            "spec.rules[0].from[0].source.ipBlocks[0]: bad CIDR range (10.0.0.0/33)",
        ),
        (
            "rules:\n  - from: [{source: {ipBlocks: [mock-attacker]}}]",
            8,
            "spec.rules[0].from[0].source.ipBlocks[0]: bad IP address (mock-attacker)",
        ),
        (
            "rules:\n  - from: [{source: {trustDomains: ['a*b']}}]",
            8,
            "spec.rules[0].from[0].source.trustDomains[0]: wildcard is only allowed at the start or end",
        ),
        (
            "rules:\n  - to: [{operation: {ports: [http]}}]",
            8,
            "spec.rules[0].to[0].operation.ports[0]: bad port",
        ),
        (
            "rules:\n  - to: [{operation: {notPorts: ['70000']}}]",
            8,
            "operation.notPorts[0]: bad port (70000)",
        ),
        (
            "rules:\n  - to: [{operation: {paths: ['/a/{**}/b/{*}']}}]",
            8,
            "operation.paths[0]: invalid or unsupported",
        ),
        (
            "rules:\n  - when: [{key: source.ip}]",
            8,
            "spec.rules[0].when[0]: at least one of `values` or `notValues`",
        ),
        (
            "rules:\n  - when: [{key: request.method, values: [GET]}]",
            8,
            "when[0].key: unknown attribute: request.method",
        ),
        (
            "rules:\n  - when: [{key: destination.namespace, values: [a]}]",
            8,
            "is replaced by the metadata.namespace",
        ),
        (
            "rules:\n  - when: [{key: request.headers, values: [a]}]",
            8,
            "when[0].key: bad key (request.headers)",
        ),
        (
            "rules:\n  - when: [{key: destination.port, values: [http]}]",
            8,
            "when[0].values[0]: bad port (http)",
        ),
        (
            "rules:\n  - when: [{key: source.ip, notValues: [x]}]",
            8,
            "when[0].notValues[0]: bad IP address (x)",
        ),
        (
            "action: CUSTOM\nprovider: {name: opa}\nrules:\n  - from: [{source: {principals: [a]}}]",
            10,
            "source.principals: principals is currently not supported with CUSTOM action",
        ),
    ],
)
def test_webhook_rules(tmp_path: Path, spec: str, line: int, expected: str) -> None:
    [(found_line, message)] = spec_problem(tmp_path, spec)

    assert found_line == line
    assert expected in message
    assert message.startswith("AuthorizationPolicy p: ")


@pytest.mark.parametrize(
    "spec",
    [
        "rules:\n  - from: [{source: {ipBlocks: [10.0.0.1, 'fd00::/8']}}]",
        "rules:\n  - when: [{key: 'request.headers[x-agent]', values: [a]}]",
        "rules:\n  - when: [{key: 'request.auth.claims[groups]', values: [a]}]",
        "rules:\n  - when: [{key: source.serviceAccount, values: [ns/sa]}]",
        "rules:\n  - to: [{operation: {paths: ['/mcp/{*}/tools/{**}']}}]",
        "rules:\n  - from: [{source: {serviceAccounts: [support-bot, agents/fraud-bot]}}]",
        "targetRef: {kind: Service, group: core, name: a}\nrules: [{}]",
        "action: AUDIT\nrules: [{}]",
    ],
)
def test_accepted_specs(tmp_path: Path, spec: str) -> None:
    assert spec_problem(tmp_path, spec) == []


@pytest.mark.parametrize(
    ("spec", "line", "expected"),
    [
        (
            "portLevelMtls: {8000: {mode: STRICT}}",
            7,
            "spec.portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS",
        ),
        (
            "selector: {matchLabels: {app: a}}\nportLevelMtls: {}",
            8,
            "spec.portLevelMtls: port level mTLS, if defined, must have at least one element",
        ),
        (
            "selector: {matchLabels: {app: a}}\nportLevelMtls:\n  0: {mode: STRICT}",
            9,
            "spec.portLevelMtls[0]: port must be in range 1..65535",
        ),
        ("mtls: {mod: STRICT}", 7, "spec.mtls.mod: unknown field (did you mean 'mode'?)"),
    ],
)
def test_peer_authentication_rules(tmp_path: Path, spec: str, line: int, expected: str) -> None:
    [(found_line, message)] = spec_problem(tmp_path, spec, kind="PeerAuthentication")

    assert (found_line, message) == (line, f"PeerAuthentication p: {expected}")


# --- mtls_mode: Istio's precedence ----------------------------------------------------------------

API = Workload("api", "shop", {"app": "api", "version": "1"})


def pa(
    namespace: str, mode: str = "UNSET", labels: dict[str, str] | None = None, **ports: str
) -> PeerAuthentication:
    spec: dict[str, object] = {"mtls": {"mode": mode}}
    if labels is not None:
        spec["selector"] = {"matchLabels": labels}
    if ports:
        spec["portLevelMtls"] = {port.lstrip("p"): {"mode": m} for port, m in ports.items()}
    return PeerAuthentication.from_spec(f"{namespace}-{mode}", namespace, spec)


def test_default_is_permissive() -> None:
    assert mtls_mode(API, 8000, []) == "PERMISSIVE"


def test_mesh_policy_applies_everywhere() -> None:
    assert mtls_mode(API, 8000, [pa("istio-system", "STRICT")]) == "STRICT"


def test_namespace_beats_mesh() -> None:
    assert mtls_mode(API, 8000, [pa("istio-system", "STRICT"), pa("shop", "PERMISSIVE")]) == "PERMISSIVE"


def test_namespace_unset_inherits_mesh() -> None:
    assert mtls_mode(API, 8000, [pa("istio-system", "STRICT"), pa("shop", "UNSET")]) == "STRICT"


def test_workload_beats_namespace() -> None:
    policies = [pa("shop", "STRICT"), pa("shop", "DISABLE", {"app": "api"})]

    assert mtls_mode(API, 8000, policies) == "DISABLE"


def test_workload_unset_inherits_namespace() -> None:
    assert mtls_mode(API, 8000, [pa("shop", "STRICT"), pa("shop", "UNSET", {"app": "api"})]) == "STRICT"


def test_port_level_overrides_for_that_port_only() -> None:
    policies = [pa("istio-system", "STRICT"), pa("shop", "UNSET", {"app": "api"}, p9090="PERMISSIVE")]

    assert mtls_mode(API, 9090, policies) == "PERMISSIVE"
    assert mtls_mode(API, 8000, policies) == "STRICT"


def test_port_level_unset_inherits_the_workload_mode() -> None:
    policies = [pa("istio-system", "PERMISSIVE"), pa("shop", "STRICT", {"app": "api"}, p9090="UNSET")]

    assert mtls_mode(API, 9090, policies) == "STRICT"


def test_selector_must_match_and_be_in_the_workload_namespace() -> None:
    policies = [
        pa("shop", "STRICT", {"app": "other"}),
        pa("elsewhere", "STRICT", {"app": "api"}),
        pa("elsewhere", "STRICT"),
        pa("istio-system", "STRICT", {"app": "api"}),  # root-namespace selectors are ignored
    ]

    assert mtls_mode(API, 8000, policies) == "PERMISSIVE"


def test_selector_without_labels_is_namespace_wide() -> None:
    empty = PeerAuthentication.from_spec("p", "shop", {"selector": {}, "mtls": {"mode": "STRICT"}})

    assert mtls_mode(API, 8000, [empty]) == "STRICT"


def test_first_declared_wins_within_a_level() -> None:
    assert mtls_mode(API, 8000, [pa("shop", "STRICT"), pa("shop", "PERMISSIVE")]) == "STRICT"


def test_root_namespace_is_configurable() -> None:
    assert mtls_mode(API, 8000, [pa("mesh-root", "STRICT")], root_namespace="mesh-root") == "STRICT"
    assert mtls_mode(API, 8000, [pa("mesh-root", "STRICT")]) == "PERMISSIVE"


def test_only_strict_refuses_plaintext() -> None:
    assert requires_mtls("STRICT")
    assert not requires_mtls("PERMISSIVE")
    assert not requires_mtls("DISABLE")
