"""What ztunnel receives for a policy (istiod's conversion), row by row, and the seed's policies.

Each test is one row of the rule table: what the author wrote, what istiod says about
it (its status text, verbatim), what our linter reports, and what then happens to
real connections at ztunnel.
"""

from __future__ import annotations

import yaml

from tests.mesh.identities import ACCOUNT_MCP, ATTACKER, CONVERTER, FRAUD_BOT, FX_API, SUPPORT_BOT
from trustusbank.manifests.kinds import KINDS
from trustusbank.mesh.authz import (
    AuthorizationPolicy,
    Connection,
    Finding,
    Scope,
    Workload,
    authorize,
    ztunnel_view,
)
from trustusbank.mesh.authz.l4 import ALLOW_DROPPED, DENY_MIXED, DENY_NO_EFFECT, HTTP_RULE_FMT
from trustusbank.mesh.identity.spiffe import SpiffeId

REGISTRY = SpiffeId("cluster.local", "trustusbank-platform", "agentregistry")
CONVERTER_POD = Workload("currency-converter", "trustusbank-bank-vendors", {"app": "currency-converter"})
AGENTGW_POD = Workload("trustusbank-agentgw", "trustusbank-platform", {"app": "trustusbank-agentgw"})
REGISTRY_POD = Workload("agentregistry", "trustusbank-platform", {"app": "agentregistry"})


def policy(text: str) -> AuthorizationPolicy:
    body = yaml.safe_load(text)
    assert KINDS[(body["apiVersion"], body["kind"])].validate(body) == []
    meta = body["metadata"]
    return AuthorizationPolicy.from_spec(
        meta["name"], meta["namespace"], body.get("spec"), meta.get("annotations")
    )


def ap(namespace: str, spec: str, name: str = "p") -> AuthorizationPolicy:
    head = f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\n"
    head += f"  namespace: {namespace}\nspec:\n"
    return policy(head + "".join(f"  {line}\n" for line in spec.strip("\n").splitlines()))


def conn(identity: SpiffeId | None, port: int = 8000) -> Connection:
    return Connection(identity, "10.244.1.5", "10.244.2.7", port)


def allowed(
    identity: SpiffeId | None, workload: Workload, *policies: AuthorizationPolicy, port: int = 8000
) -> bool:
    return authorize(conn(identity, port), workload, policies).allowed


def status(found: str, boilerplate: str) -> str:
    return HTTP_RULE_FMT.format(found=found, boilerplate=boilerplate)


def fields(findings: tuple[Finding, ...]) -> list[tuple[int | None, str]]:
    return [(f.rule, f.field) for f in findings]


# --- ALLOW rows: a rule with any HTTP attribute is dropped --------------------------------------


def test_allow_hosts_only_rule_dropped_workload_denied_for_everyone() -> None:
    p = ap("trustusbank-bank-mcp", "rules:\n  - to: [{operation: {hosts: [account-mcp.example]}}]")

    view = ztunnel_view(p)

    assert view.status == status("hosts", ALLOW_DROPPED)
    assert view.enforced is not None
    assert view.enforced.groups == ()
    assert fields(view.findings) == [(0, "hosts"), (None, "rules")]
    assert view.findings[0].path == ("spec", "rules", 0, "to", 0, "operation", "hosts")
    assert "this ALLOW rule is dropped" in view.findings[0].message
    assert not allowed(SUPPORT_BOT, ACCOUNT_MCP, p)
    assert not allowed(None, ACCOUNT_MCP, p)


def test_allow_principals_with_paths_rule_dropped() -> None:
    p = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from: [{source: {principals: [cluster.local/ns/trustusbank-bank-agents/sa/support-bot]}}]
    to: [{operation: {paths: [/mcp]}}]
""",
    )

    view = ztunnel_view(p)

    assert view.status == status("paths", ALLOW_DROPPED)
    assert not allowed(SUPPORT_BOT, ACCOUNT_MCP, p)


def test_allow_only_the_http_rule_is_dropped_others_kept() -> None:
    p = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from: [{source: {principals: [cluster.local/ns/trustusbank-bank-agents/sa/fraud-bot]}}]
    to: [{operation: {methods: [GET]}}]
  - from: [{source: {principals: [cluster.local/ns/trustusbank-bank-agents/sa/support-bot]}}]
""",
    )

    view = ztunnel_view(p)

    assert view.status == status("methods", ALLOW_DROPPED)
    assert view.enforced is not None
    assert len(view.enforced.groups) == 1
    assert fields(view.findings) == [(0, "methods")]
    assert allowed(SUPPORT_BOT, ACCOUNT_MCP, p)
    assert not allowed(FRAUD_BOT, ACCOUNT_MCP, p)


def test_allow_request_principals_rule_dropped() -> None:
    p = ap("trustusbank-bank-mcp", "rules:\n  - from: [{source: {requestPrincipals: ['https://idp/*']}}]")

    assert ztunnel_view(p).status == status("requestPrincipals", ALLOW_DROPPED)
    assert not allowed(SUPPORT_BOT, ACCOUNT_MCP, p)


def test_allow_remote_ip_blocks_rule_dropped() -> None:
    p = ap("trustusbank-bank-mcp", "rules:\n  - from: [{source: {remoteIpBlocks: [0.0.0.0/0]}}]")

    assert ztunnel_view(p).status == status("remoteIpBlocks", ALLOW_DROPPED)
    assert not allowed(SUPPORT_BOT, ACCOUNT_MCP, p)


def test_allow_when_request_header_rule_dropped() -> None:
    p = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from: [{source: {namespaces: [trustusbank-bank-agents]}}]
    when:
      - key: request.headers[x-agent]
        values: [support-bot]
""",
    )

    view = ztunnel_view(p)

    assert view.status == status("request.headers[x-agent]", ALLOW_DROPPED)
    assert view.findings[0].path == ("spec", "rules", 0, "when", 0, "key")
    assert not allowed(SUPPORT_BOT, ACCOUNT_MCP, p)


def test_allow_when_jwt_claim_rule_dropped() -> None:
    p = ap("trustusbank-bank-mcp", "rules:\n  - when: [{key: 'request.auth.claims[groups]', values: [ops]}]")

    assert ztunnel_view(p).status == status("request.auth.claims[groups]", ALLOW_DROPPED)
    assert not allowed(SUPPORT_BOT, ACCOUNT_MCP, p)


def test_allow_when_source_service_account_is_http_to_istiod() -> None:
    # `from.source.serviceAccounts` is L4, but the `when` key `source.serviceAccount` is not in
    # istiod's L4 key set: the rule is dropped.
    p = ap(
        "trustusbank-bank-mcp",
        "rules:\n  - when: [{key: source.serviceAccount, values: [trustusbank-bank-agents/support-bot]}]",
    )

    assert ztunnel_view(p).status == status("source.serviceAccount", ALLOW_DROPPED)
    assert not allowed(SUPPORT_BOT, ACCOUNT_MCP, p)


def test_allow_when_connection_sni_rule_dropped() -> None:
    p = ap("trustusbank-bank-mcp", "rules:\n  - when: [{key: connection.sni, values: [account-mcp]}]")

    assert ztunnel_view(p).status == status("connection.sni", ALLOW_DROPPED)


def test_allow_l4_only_policy_has_no_status_or_findings() -> None:
    p = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from: [{source: {namespaces: [trustusbank-bank-agents], notIpBlocks: [10.9.0.0/16]}}]
    to: [{operation: {ports: ['8000']}}]
    when: [{key: source.principal, notValues: ['*/sa/fraud-bot']}]
""",
    )

    view = ztunnel_view(p)

    assert (view.status, view.findings) == (None, ())
    assert allowed(SUPPORT_BOT, ACCOUNT_MCP, p)
    assert not allowed(FRAUD_BOT, ACCOUNT_MCP, p)


def test_several_http_attributes_are_listed_sorted() -> None:
    p = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from: [{source: {requestPrincipals: ['*']}}]
    to: [{operation: {methods: [GET]}}]
    when: [{key: request.auth.presenter, values: [presenter.example.com]}]
""",
    )

    # The same wording and order as istiod's own unit test for this policy.
    assert ztunnel_view(p).status == (
        "ztunnel does not support HTTP attributes "
        "(found: methods, request.auth.presenter, requestPrincipals). "
        "In ambient mode you must use a waypoint proxy to enforce HTTP rules. "
        "Within an ALLOW policy, rules matching HTTP attributes are omitted. "
        "This will be more restrictive than requested."
    )


# --- DENY rows: HTTP fields are removed; an emptied clause never matches -------------------------


def test_deny_hosts_only_has_no_effect() -> None:
    p = ap("external-attacker", "action: DENY\nrules:\n  - to: [{operation: {hosts: ['*']}}]")

    view = ztunnel_view(p)

    assert view.status == status("hosts", DENY_NO_EFFECT)
    assert view.status.endswith(
        "After omitting unsupported HTTP attributes, this DENY policy has no enforceable rules at ztunnel "
        "and will have no effect. Deploy a waypoint proxy and use a targetRef to enforce this policy."
    )
    assert not view.has_effect
    assert fields(view.findings) == [(0, "hosts"), (None, "rules")]
    assert "blocks nothing" in view.findings[0].message
    assert allowed(CONVERTER, ATTACKER, p)


def test_deny_namespaces_in_same_source_as_request_principals_is_narrowed_to_namespaces() -> None:
    p = ap(
        "external-attacker",
        """
action: DENY
rules:
  - from:
      - source:
          namespaces: [trustusbank-bank-vendors]
          notRequestPrincipals: ['*']
""",
    )

    view = ztunnel_view(p)

    assert view.status == status("notRequestPrincipals", DENY_MIXED)
    assert "denies more than written" in view.findings[0].message
    assert not allowed(CONVERTER, ATTACKER, p)  # with or without a JWT: ztunnel cannot tell
    assert allowed(FX_API, ATTACKER, p)


def test_deny_ports_and_methods_in_same_operation_is_narrowed_to_the_port() -> None:
    p = ap(
        "trustusbank-bank-vendors",
        "action: DENY\nrules:\n  - to: [{operation: {ports: ['8000'], methods: [POST]}}]",
    )

    assert ztunnel_view(p).status == status("methods", DENY_MIXED)
    assert not allowed(SUPPORT_BOT, CONVERTER_POD, p, port=8000)  # any method, even a GET
    assert allowed(SUPPORT_BOT, CONVERTER_POD, p, port=9090)


def test_deny_ports_and_paths_is_narrowed_to_the_port() -> None:
    p = ap(
        "trustusbank-bank-vendors",
        "action: DENY\nrules:\n  - to: [{operation: {ports: ['8000'], paths: [/admin]}}]",
    )

    assert ztunnel_view(p).status == status("paths", DENY_MIXED)
    assert not allowed(SUPPORT_BOT, CONVERTER_POD, p, port=8000)
    assert allowed(SUPPORT_BOT, CONVERTER_POD, p, port=9090)


def test_deny_namespaces_with_methods_in_separate_to_is_a_no_op() -> None:
    # The `to` clause keeps only an empty match, which ztunnel skips; ANDed with `from`, the
    # rule never matches. istiod: "DENY policy with L4 From and L7-only To methods is a no-op".
    p = ap(
        "external-attacker",
        """
action: DENY
rules:
  - from: [{source: {namespaces: [trustusbank-bank-vendors]}}]
    to: [{operation: {methods: [POST]}}]
""",
    )

    view = ztunnel_view(p)

    assert view.status == status("methods", DENY_NO_EFFECT)
    assert fields(view.findings) == [(0, "methods"), (None, "rules")]
    assert allowed(CONVERTER, ATTACKER, p)


def test_deny_principals_with_request_header_when_is_a_no_op() -> None:
    p = ap(
        "external-attacker",
        """
action: DENY
rules:
  - from: [{source: {principals: ['*/sa/currency-converter']}}]
    when: [{key: 'request.headers[x-token]', values: [secret]}]
""",
    )

    assert ztunnel_view(p).status == status("request.headers[x-token]", DENY_NO_EFFECT)
    assert allowed(CONVERTER, ATTACKER, p)


def test_deny_request_header_when_only_is_a_no_op() -> None:
    p = ap(
        "external-attacker", "action: DENY\nrules:\n  - when: [{key: 'request.headers[x-a]', values: [b]}]"
    )

    assert ztunnel_view(p).status == status("request.headers[x-a]", DENY_NO_EFFECT)
    assert allowed(CONVERTER, ATTACKER, p)


def test_deny_remote_ip_blocks_only_is_a_no_op() -> None:
    p = ap("external-attacker", "action: DENY\nrules:\n  - from: [{source: {remoteIpBlocks: [0.0.0.0/0]}}]")

    assert ztunnel_view(p).status == status("remoteIpBlocks", DENY_NO_EFFECT)
    assert allowed(CONVERTER, ATTACKER, p)


def test_deny_ip_blocks_with_remote_ip_blocks_is_narrowed_to_ip_blocks() -> None:
    p = ap(
        "external-attacker",
        "action: DENY\nrules:\n  - from: [{source: {ipBlocks: [10.244.1.0/24], remoteIpBlocks: [1.2.3.4]}}]",
    )

    assert ztunnel_view(p).status == status("remoteIpBlocks", DENY_MIXED)
    assert not allowed(FX_API, ATTACKER, p)


def test_deny_request_principals_only_is_a_no_op() -> None:
    p = ap("external-attacker", "action: DENY\nrules:\n  - from: [{source: {notRequestPrincipals: [a/b]}}]")

    assert ztunnel_view(p).status == status("notRequestPrincipals", DENY_NO_EFFECT)
    assert allowed(None, ATTACKER, p)


def test_deny_http_only_rule_beside_an_l4_rule_enforces_the_l4_rule() -> None:
    p = ap(
        "external-attacker",
        """
action: DENY
rules:
  - to: [{operation: {paths: [/exfil]}}]
  - from: [{source: {namespaces: [trustusbank-bank-vendors]}}]
""",
    )

    view = ztunnel_view(p)

    assert view.status == status("paths", DENY_MIXED)
    assert fields(view.findings) == [(0, "paths")]
    assert "blocks nothing" in view.findings[0].message
    assert not allowed(CONVERTER, ATTACKER, p)
    assert allowed(FX_API, ATTACKER, p)


def test_deny_catch_all_rule_beside_an_http_rule_denies_everything() -> None:
    p = ap("external-attacker", "action: DENY\nrules:\n  - {}\n  - to: [{operation: {methods: [GET]}}]")

    assert ztunnel_view(p).status == status("methods", DENY_MIXED)
    assert not allowed(FX_API, ATTACKER, p)


# --- silently lost fields and other traps --------------------------------------------------------


def test_deny_trust_domains_only_silently_has_no_effect() -> None:
    p = ap("external-attacker", "action: DENY\nrules:\n  - from: [{source: {trustDomains: [cluster.local]}}]")

    view = ztunnel_view(p)

    assert view.status is None  # istiod says nothing
    assert fields(view.findings) == [(0, "trustDomains"), (0, "rule"), (None, "rules")]
    assert allowed(CONVERTER, ATTACKER, p)


def test_allow_trust_domains_only_silently_allows_nothing() -> None:
    p = ap("trustusbank-bank-mcp", "rules:\n  - from: [{source: {trustDomains: [cluster.local]}}]")

    view = ztunnel_view(p)

    assert view.status is None
    assert (0, "trustDomains") in fields(view.findings)
    assert not allowed(SUPPORT_BOT, ACCOUNT_MCP, p)


def test_spiffe_scheme_in_principals_is_reported() -> None:
    p = ap(
        "trustusbank-bank-mcp",
        "rules:\n  - from: [{source: {principals: ['spiffe://cluster.local/ns/a/sa/b']}}]",
    )

    (finding,) = ztunnel_view(p).findings

    assert finding.path == ("spec", "rules", 0, "from", 0, "source", "principals", 0)
    assert "'cluster.local/ns/a/sa/b'" in finding.message


def test_wildcard_in_the_middle_is_reported() -> None:
    p = ap("trustusbank-bank-mcp", "rules:\n  - from: [{source: {namespaces: ['trustusbank-*-mcp']}}]")

    assert fields(ztunnel_view(p).findings) == [(0, "namespaces")]


def test_selector_without_labels_is_reported() -> None:
    p = ap("trustusbank-bank-mcp", "selector: {}\naction: DENY\nrules: [{}]")

    assert fields(ztunnel_view(p).findings) == [(None, "selector")]


def test_target_refs_policy_is_not_sent_to_ztunnel() -> None:
    p = ap(
        "trustusbank-platform",
        "targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: agentgw}]\n"
        "action: DENY\nrules:\n  - to: [{operation: {paths: [/mcp]}}]",
    )

    view = ztunnel_view(p)

    assert (view.enforced, view.status) == (None, None)
    assert fields(view.findings) == [(None, "targetRefs")]


def test_audit_and_custom_are_not_sent_to_ztunnel() -> None:
    audit = ap("external-attacker", "action: AUDIT\nrules: [{}]")
    custom = ap("external-attacker", "action: CUSTOM\nprovider: {name: opa}\nrules: [{}]")

    assert ztunnel_view(audit).status == "ztunnel does not support the AUDIT action"
    assert ztunnel_view(custom).status == "ztunnel does not support the CUSTOM action"
    assert ztunnel_view(audit).enforced is None
    assert "silently not enforced" in ztunnel_view(custom).findings[0].message


def test_scope_sent_to_ztunnel() -> None:
    def scope(namespace: str, spec: str) -> Scope:
        enforced = ztunnel_view(ap(namespace, spec)).enforced
        assert enforced is not None
        return enforced.scope

    assert scope("istio-system", "{}") == Scope.GLOBAL
    assert scope("trustusbank-bank-mcp", "{}") == Scope.NAMESPACE
    assert scope("trustusbank-bank-mcp", "selector: {matchLabels: {app: x}}") == Scope.WORKLOAD_SELECTOR


def test_default_deny_is_fine_as_written() -> None:
    view = ztunnel_view(ap("trustusbank-bank-mcp", "{}"))

    assert (view.status, view.findings, view.has_effect) == (None, (), True)


# --- the seed's policies -----------------------------------------------------------------------


def test_act3_deny_vendor_to_attacker_blocks_nothing() -> None:
    # The write-up's Act-3 policy: it selects the converter as a *destination*, and `hosts` is L7.
    p = policy(
        """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-vendor-to-attacker
  namespace: trustusbank-bank-vendors
spec:
  action: DENY
  selector:
    matchLabels:
      app: currency-converter
  rules:
    - to:
        - operation:
            hosts: ["mock-attacker.external-attacker.svc.cluster.local"]
"""
    )

    view = ztunnel_view(p)

    assert view.status == status("hosts", DENY_NO_EFFECT)
    assert not view.has_effect
    assert allowed(CONVERTER, ATTACKER, p)  # the exfil it was meant to stop
    assert allowed(SUPPORT_BOT, CONVERTER_POD, p)  # nor anything into the converter


def test_deny_bank_to_attacker_stops_the_exfil() -> None:
    p = policy(
        """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-bank-to-attacker
  namespace: external-attacker
spec:
  action: DENY
  rules:
    - from:
        - source:
            namespaces:
              - "trustusbank-bank-*"
              - "trustusbank-platform"
"""
    )

    assert (ztunnel_view(p).status, ztunnel_view(p).findings) == (None, ())
    denied = authorize(conn(CONVERTER, 8080), ATTACKER, [p])
    assert (denied.allowed, denied.reason, denied.policy) == (
        False,
        "explicitly denied by: external-attacker/deny-bank-to-attacker",
        "external-attacker/deny-bank-to-attacker",
    )
    assert not allowed(SUPPORT_BOT, ATTACKER, p, port=8080)
    assert not allowed(REGISTRY, ATTACKER, p, port=8080)
    assert allowed(FX_API, ATTACKER, p, port=8080)
    # Off-mesh (plaintext) traffic carries no namespace to match: stopping it needs more than this.
    assert allowed(None, ATTACKER, p, port=8080)


def test_runbook_l7_precall_block_denies_all_of_port_8080_on_the_gateway() -> None:
    p = policy(
        """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-mcp-vendor-route-l7
  namespace: trustusbank-platform
  labels:
    demo: l7-precall-block
spec:
  selector:
    matchLabels:
      app: trustusbank-agentgw
  action: DENY
  rules:
    - to:
        - operation:
            paths:
              - /mcp/currency-converter
              - /mcp/currency-converter/*
              - /mcp/acme-fx/*
            methods: ["POST"]
            ports: ["8080"]
"""
    )

    view = ztunnel_view(p)

    assert view.status == status("methods, paths", DENY_MIXED)
    assert fields(view.findings) == [(0, "methods"), (0, "paths")]
    # Every connection to the gateway's 8080, whatever the path or method: account-mcp too.
    assert authorize(conn(SUPPORT_BOT, 8080), AGENTGW_POD, [p]).reason == (
        "explicitly denied by: trustusbank-platform/deny-mcp-vendor-route-l7"
    )
    assert not allowed(FRAUD_BOT, AGENTGW_POD, p, port=8080)
    assert allowed(SUPPORT_BOT, AGENTGW_POD, p, port=15021)
    assert allowed(SUPPORT_BOT, REGISTRY_POD, p, port=8080)


def test_finding_renders_for_a_lint_listing() -> None:
    p = ap("external-attacker", "action: DENY\nrules:\n  - to: [{operation: {hosts: [x]}}]", name="d")

    assert str(ztunnel_view(p).findings[0]).startswith(
        "external-attacker/d rules[0] hosts: `hosts` is an HTTP"
    )


def test_dry_run_policy_is_reported_and_never_enforced() -> None:
    p = policy(
        """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: try-deny
  namespace: external-attacker
  annotations:
    istio.io/dry-run: "true"
spec:
  action: DENY
  rules:
    - {}
"""
    )

    view = ztunnel_view(p)

    assert fields(view.findings) == [(None, "metadata.annotations")]
    assert not view.has_effect
    assert allowed(CONVERTER, ATTACKER, p)
