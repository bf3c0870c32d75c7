"""Istio AuthorizationPolicy rule semantics, as ztunnel decides an inbound connection.

Each policy is written as the YAML a user would apply, validated as the bundle loader
would, then decided by `authorize` at the destination.
"""

from __future__ import annotations

import logging

import pytest
import yaml

from tests.mesh.identities import ACCOUNT_MCP, ATTACKER, CONVERTER, FRAUD_BOT, FX_API, SUPPORT_BOT
from trustusbank.manifests.kinds import KINDS
from trustusbank.mesh.authz import (
    AuthorizationPolicy,
    Connection,
    Decision,
    Workload,
    applies_to,
    authorize,
    policies_for_gateway,
    policies_for_service,
)
from trustusbank.mesh.authz import evaluate as evaluate_module
from trustusbank.mesh.identity.spiffe import SpiffeId

GATEWAY = SpiffeId("cluster.local", "trustusbank-platform", "agentgateway")


def policy(text: str) -> AuthorizationPolicy:
    """A policy from its YAML, refused here if a cluster would refuse it."""
    body = yaml.safe_load(text)
    errors = KINDS[(body["apiVersion"], body["kind"])].validate(body)
    assert errors == [], errors
    meta = body["metadata"]
    return AuthorizationPolicy.from_spec(
        meta["name"], meta["namespace"], body.get("spec"), meta.get("annotations")
    )


def ap(namespace: str, spec: str, name: str = "p", extra_meta: str = "") -> AuthorizationPolicy:
    head = f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\n"
    head += f"  namespace: {namespace}\n{extra_meta}spec:\n"
    return policy(head + "".join(f"  {line}\n" for line in spec.strip("\n").splitlines()))


def conn(
    identity: SpiffeId | None, port: int = 8000, src: str = "10.244.1.5", dst: str = "10.244.2.7"
) -> Connection:
    return Connection(identity, src, dst, port)


def decide(c: Connection, workload: Workload, *policies: AuthorizationPolicy) -> Decision:
    return authorize(c, workload, policies)


# --- the decision order -------------------------------------------------------------------


def test_no_policy_allows() -> None:
    decision = decide(conn(SUPPORT_BOT), ACCOUNT_MCP)

    assert decision == Decision(True, "no allow policies, allow")


def test_default_deny_namespace_policy_denies_everyone() -> None:
    default_deny = ap("trustusbank-bank-mcp", "{}", name="default-deny")

    for identity in (SUPPORT_BOT, CONVERTER, None):
        decision = decide(conn(identity), ACCOUNT_MCP, default_deny)
        assert decision == Decision(False, "allow policies exist, but none allowed")


def test_default_deny_with_spiffe_principal_allow() -> None:
    default_deny = ap("trustusbank-bank-mcp", "{}", name="default-deny")
    allow_agents = ap(
        "trustusbank-bank-mcp",
        """
action: ALLOW
rules:
  - from:
      - source:
          principals:
            - cluster.local/ns/trustusbank-bank-agents/sa/support-bot
            - cluster.local/ns/trustusbank-platform/sa/agentgateway
""",
        name="allow-agents-to-mcp",
    )

    allowed = decide(conn(SUPPORT_BOT), ACCOUNT_MCP, default_deny, allow_agents)
    assert allowed == Decision(True, "allowed by: trustusbank-bank-mcp/allow-agents-to-mcp", allow_agents.ref)
    assert decide(conn(GATEWAY), ACCOUNT_MCP, default_deny, allow_agents).allowed
    assert not decide(conn(CONVERTER), ACCOUNT_MCP, default_deny, allow_agents).allowed
    assert not decide(conn(FRAUD_BOT), ACCOUNT_MCP, default_deny, allow_agents).allowed
    assert not decide(conn(None), ACCOUNT_MCP, default_deny, allow_agents).allowed


def test_deny_wins_over_a_matching_allow() -> None:
    allow_all = ap("trustusbank-bank-mcp", "rules:\n  - {}", name="allow-all")
    deny_bot = ap(
        "trustusbank-bank-mcp",
        "action: DENY\nrules:\n  - from:\n      - source:\n          principals: ['*/sa/support-bot']",
        name="deny-bot",
    )

    decision = decide(conn(SUPPORT_BOT), ACCOUNT_MCP, allow_all, deny_bot)

    assert decision == Decision(False, "explicitly denied by: trustusbank-bank-mcp/deny-bot", deny_bot.ref)
    assert decide(conn(FRAUD_BOT), ACCOUNT_MCP, allow_all, deny_bot).allowed


def test_any_one_allow_policy_is_enough() -> None:
    first = ap("trustusbank-bank-mcp", "rules:\n  - from:\n      - source:\n          principals: ['x']", "a")
    second = ap(
        "trustusbank-bank-mcp",
        "rules:\n  - from:\n      - source:\n          namespaces: ['trustusbank-bank-agents']",
        "b",
    )

    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, first, second).policy == "trustusbank-bank-mcp/b"


# --- empty and catch-all rules -----------------------------------------------------------


def test_allow_with_one_empty_rule_allows_everyone_even_plaintext() -> None:
    allow_all = ap("trustusbank-bank-mcp", "rules:\n  - {}")

    assert decide(conn(None), ACCOUNT_MCP, allow_all).allowed
    assert decide(conn(CONVERTER), ACCOUNT_MCP, allow_all).allowed


def test_allow_with_empty_rule_list_allows_nothing() -> None:
    allow_nothing = ap("trustusbank-bank-mcp", "action: ALLOW\nrules: []")

    assert not decide(conn(SUPPORT_BOT), ACCOUNT_MCP, allow_nothing).allowed


def test_deny_with_one_empty_rule_denies_everyone() -> None:
    deny_all = ap("trustusbank-bank-mcp", "action: DENY\nrules:\n  - {}", name="deny-all")

    for identity in (SUPPORT_BOT, None):
        assert decide(conn(identity), ACCOUNT_MCP, deny_all).reason == (
            "explicitly denied by: trustusbank-bank-mcp/deny-all"
        )


def test_deny_without_rules_matches_nothing() -> None:
    # The webhook refuses this policy (see test_policy_kinds); if it got through, ztunnel would ignore it.
    deny_nothing = AuthorizationPolicy.from_spec("deny", "trustusbank-bank-mcp", {"action": "DENY"})

    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, deny_nothing) == Decision(True, "no allow policies, allow")


# --- AND / OR ----------------------------------------------------------------------------


def test_from_entries_are_ored() -> None:
    allow = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from:
      - source: {principals: [cluster.local/ns/trustusbank-bank-agents/sa/support-bot]}
      - source: {namespaces: [trustusbank-platform]}
""",
    )

    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, allow).allowed
    assert decide(conn(GATEWAY), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(FRAUD_BOT), ACCOUNT_MCP, allow).allowed


def test_fields_within_a_source_are_anded() -> None:
    allow = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from:
      - source:
          namespaces: [trustusbank-bank-agents]
          ipBlocks: [10.244.1.0/24]
""",
    )

    assert decide(conn(SUPPORT_BOT, src="10.244.1.9"), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(SUPPORT_BOT, src="10.244.3.9"), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(GATEWAY, src="10.244.1.9"), ACCOUNT_MCP, allow).allowed


def test_values_within_a_field_are_ored() -> None:
    allow = ap("trustusbank-bank-mcp", "rules:\n  - to:\n      - operation: {ports: ['8000', '9090']}")

    assert decide(conn(None, port=8000), ACCOUNT_MCP, allow).allowed
    assert decide(conn(None, port=9090), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(None, port=8080), ACCOUNT_MCP, allow).allowed


def test_from_to_and_when_are_anded() -> None:
    allow = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from:
      - source: {namespaces: [trustusbank-bank-agents]}
    to:
      - operation: {ports: ['8000']}
    when:
      - key: source.ip
        values: [10.244.1.0/24]
""",
    )

    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(SUPPORT_BOT, port=9090), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(SUPPORT_BOT, src="10.244.2.1"), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(GATEWAY), ACCOUNT_MCP, allow).allowed


def test_rules_are_ored() -> None:
    allow = ap(
        "trustusbank-bank-mcp",
        """
rules:
  - from: [{source: {principals: [cluster.local/ns/trustusbank-bank-agents/sa/support-bot]}}]
  - to: [{operation: {ports: ['9090']}}]
""",
    )

    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, allow).allowed
    assert decide(conn(CONVERTER, port=9090), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(CONVERTER), ACCOUNT_MCP, allow).allowed


# --- not* fields ---------------------------------------------------------------------------


def test_not_principals_matches_everyone_else_including_plaintext() -> None:
    deny_others = ap(
        "trustusbank-bank-mcp",
        """
action: DENY
rules:
  - from:
      - source:
          notPrincipals: [cluster.local/ns/trustusbank-bank-agents/sa/support-bot]
""",
    )

    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, deny_others).allowed
    assert not decide(conn(FRAUD_BOT), ACCOUNT_MCP, deny_others).allowed
    assert not decide(conn(None), ACCOUNT_MCP, deny_others).allowed


def test_not_principals_star_denies_plaintext_only() -> None:
    # Istio's idiom for "require mTLS": DENY when there is no principal at all.
    require_mtls = ap(
        "trustusbank-bank-mcp", "action: DENY\nrules:\n  - from: [{source: {notPrincipals: ['*']}}]"
    )

    assert decide(conn(CONVERTER), ACCOUNT_MCP, require_mtls).allowed
    assert not decide(conn(None), ACCOUNT_MCP, require_mtls).allowed


def test_not_namespaces_within_allow() -> None:
    allow = ap(
        "trustusbank-bank-mcp",
        "rules:\n  - from:\n      - source:\n          namespaces: ['trustusbank-*']\n"
        "          notNamespaces: [trustusbank-bank-vendors]",
    )

    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(CONVERTER), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(FX_API), ACCOUNT_MCP, allow).allowed


def test_not_ports() -> None:
    allow = ap("trustusbank-bank-mcp", "rules:\n  - to: [{operation: {notPorts: ['15020']}}]")

    assert decide(conn(None, port=8000), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(None, port=15020), ACCOUNT_MCP, allow).allowed


# --- wildcards and identities ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "matching", "other"),
    [
        ("trustusbank-bank-*", CONVERTER, GATEWAY),
        ("*-agents", SUPPORT_BOT, CONVERTER),
        ("*", FX_API, None),
    ],
    ids=["prefix", "suffix", "presence"],
)
def test_namespace_wildcards(pattern: str, matching: SpiffeId, other: SpiffeId | None) -> None:
    deny = ap(
        "external-attacker", f"action: DENY\nrules:\n  - from: [{{source: {{namespaces: ['{pattern}']}}}}]"
    )

    assert not decide(conn(matching), ATTACKER, deny).allowed
    assert decide(conn(other), ATTACKER, deny).allowed


@pytest.mark.parametrize(
    ("pattern", "matching", "other"),
    [
        ("*-bot", FRAUD_BOT, CONVERTER),
        ("cluster.local/ns/trustusbank-bank-agents/sa/*", SUPPORT_BOT, GATEWAY),
        ("*", CONVERTER, None),
        ("cluster.local/ns/trustusbank-platform/sa/agentgateway", GATEWAY, SUPPORT_BOT),
    ],
    ids=["suffix", "prefix", "presence", "exact"],
)
def test_principal_patterns(pattern: str, matching: SpiffeId, other: SpiffeId | None) -> None:
    allow = ap("trustusbank-bank-mcp", f"rules:\n  - from: [{{source: {{principals: ['{pattern}']}}}}]")

    assert decide(conn(matching), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(other), ACCOUNT_MCP, allow).allowed


def test_wildcard_in_the_middle_is_literal() -> None:
    allow = ap(
        "trustusbank-bank-mcp",
        "rules:\n  - from: [{source: {principals: ['cluster.local/ns/*/sa/support-bot']}}]",
    )

    assert not decide(conn(SUPPORT_BOT), ACCOUNT_MCP, allow).allowed


def test_principal_written_with_spiffe_scheme_never_matches() -> None:
    # As in ztunnel: the peer's `spiffe://` is stripped before comparing, so the policy must omit it.
    allow = ap(
        "trustusbank-bank-mcp",
        "rules:\n  - from: [{source: {principals: ['spiffe://cluster.local/ns/trustusbank-bank-agents/sa/support-bot']}}]",
    )

    assert not decide(conn(SUPPORT_BOT), ACCOUNT_MCP, allow).allowed


def test_other_trust_domain_does_not_match_a_principal() -> None:
    allow = ap(
        "trustusbank-bank-mcp", "rules:\n  - from: [{source: {principals: ['cluster.local/ns/a/sa/b']}}]"
    )

    assert not decide(conn(SpiffeId("example.org", "a", "b")), ACCOUNT_MCP, allow).allowed
    assert decide(conn(SpiffeId("cluster.local", "a", "b")), ACCOUNT_MCP, allow).allowed


def test_service_accounts_bare_name_means_the_policy_namespace() -> None:
    allow = ap(
        "trustusbank-bank-agents",
        "rules:\n  - from: [{source: {serviceAccounts: [support-bot, trustusbank-platform/agentgateway]}}]",
    )
    agent = Workload("fraud-bot", "trustusbank-bank-agents", {"app": "fraud-bot"})

    assert decide(conn(SUPPORT_BOT), agent, allow).allowed
    assert decide(conn(GATEWAY), agent, allow).allowed
    assert not decide(conn(SpiffeId("cluster.local", "other", "support-bot")), agent, allow).allowed
    assert not decide(conn(None), agent, allow).allowed


def test_not_service_accounts() -> None:
    deny = ap(
        "trustusbank-bank-agents",
        "action: DENY\nrules:\n  - from: [{source: {notServiceAccounts: [support-bot]}}]",
    )
    agent = Workload("fraud-bot", "trustusbank-bank-agents", {"app": "fraud-bot"})

    assert decide(conn(SUPPORT_BOT), agent, deny).allowed
    assert not decide(conn(FRAUD_BOT), agent, deny).allowed


# --- addresses ------------------------------------------------------------------------------


def test_ip_blocks_cidr_and_single_address() -> None:
    allow = ap(
        "trustusbank-bank-mcp", "rules:\n  - from: [{source: {ipBlocks: [10.244.1.0/24, 10.244.9.9]}}]"
    )

    assert decide(conn(None, src="10.244.1.200"), ACCOUNT_MCP, allow).allowed
    assert decide(conn(None, src="10.244.9.9"), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(None, src="10.244.9.10"), ACCOUNT_MCP, allow).allowed
    assert not decide(conn(None, src="fd00::1"), ACCOUNT_MCP, allow).allowed


def test_not_ip_blocks() -> None:
    deny = ap(
        "trustusbank-bank-mcp", "action: DENY\nrules:\n  - from: [{source: {notIpBlocks: [10.244.0.0/16]}}]"
    )

    assert decide(conn(None, src="10.244.1.1"), ACCOUNT_MCP, deny).allowed
    assert not decide(conn(None, src="192.168.1.1"), ACCOUNT_MCP, deny).allowed


def test_cidr_with_host_bits_set_is_its_network() -> None:
    allow = ap("trustusbank-bank-mcp", "rules:\n  - from: [{source: {ipBlocks: [10.244.1.77/24]}}]")

    assert decide(conn(None, src="10.244.1.3"), ACCOUNT_MCP, allow).allowed


@pytest.mark.parametrize(
    ("key", "values", "hit", "miss"),
    [
        ("source.ip", "[10.244.1.0/24]", conn(CONVERTER, src="10.244.1.1"), conn(CONVERTER, src="10.1.1.1")),
        ("source.namespace", "[trustusbank-bank-*]", conn(CONVERTER), conn(FX_API)),
        ("source.principal", "['*/sa/currency-converter']", conn(CONVERTER), conn(SUPPORT_BOT)),
        ("destination.ip", "[10.244.2.7]", conn(CONVERTER), conn(CONVERTER, dst="10.244.2.8")),
        ("destination.port", "['8080']", conn(CONVERTER, port=8080), conn(CONVERTER, port=8000)),
    ],
)
def test_when_l4_keys(key: str, values: str, hit: Connection, miss: Connection) -> None:
    deny = ap(
        "external-attacker", f"action: DENY\nrules:\n  - when:\n      - key: {key}\n        values: {values}"
    )

    assert not decide(hit, ATTACKER, deny).allowed
    assert decide(miss, ATTACKER, deny).allowed


def test_when_not_values() -> None:
    deny = ap(
        "external-attacker",
        "action: DENY\nrules:\n  - when:\n      - key: source.namespace\n        notValues: [external-fx]",
    )

    assert decide(conn(FX_API), ATTACKER, deny).allowed
    assert not decide(conn(CONVERTER), ATTACKER, deny).allowed


# --- which workloads a policy applies to -----------------------------------------------------


def test_namespace_policy_applies_only_in_its_namespace() -> None:
    deny_all = ap("trustusbank-bank-mcp", "action: DENY\nrules:\n  - {}")

    assert not decide(conn(SUPPORT_BOT), ACCOUNT_MCP, deny_all).allowed
    assert decide(conn(SUPPORT_BOT), ATTACKER, deny_all).allowed


def test_selector_policy_applies_to_matching_labels_only() -> None:
    deny = ap(
        "trustusbank-bank-mcp", "selector:\n  matchLabels: {app: account-mcp}\naction: DENY\nrules:\n  - {}"
    )
    ticket = Workload("ticket-mcp", "trustusbank-bank-mcp", {"app": "ticket-mcp"})
    elsewhere = Workload("account-mcp", "other", {"app": "account-mcp"})

    assert not decide(conn(SUPPORT_BOT), ACCOUNT_MCP, deny).allowed
    assert decide(conn(SUPPORT_BOT), ticket, deny).allowed
    assert decide(conn(SUPPORT_BOT), elsewhere, deny).allowed


def test_root_namespace_policy_applies_to_every_workload() -> None:
    mesh_wide = ap("istio-system", "action: DENY\nrules:\n  - from: [{source: {notPrincipals: ['*']}}]")

    assert not decide(conn(None), ACCOUNT_MCP, mesh_wide).allowed
    assert not decide(conn(None), ATTACKER, mesh_wide).allowed
    assert decide(conn(SUPPORT_BOT), ATTACKER, mesh_wide).allowed


def test_root_namespace_selector_applies_across_namespaces() -> None:
    by_label = ap(
        "istio-system", "selector:\n  matchLabels: {app: mock-attacker}\naction: DENY\nrules:\n  - {}"
    )

    assert not decide(conn(SUPPORT_BOT), ATTACKER, by_label).allowed
    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, by_label).allowed


def test_root_namespace_is_configurable() -> None:
    mesh_wide = ap("mesh-root", "action: DENY\nrules:\n  - {}")

    assert authorize(conn(SUPPORT_BOT), ATTACKER, [mesh_wide]).allowed
    assert not authorize(conn(SUPPORT_BOT), ATTACKER, [mesh_wide], root_namespace="mesh-root").allowed


def test_selector_without_labels_applies_to_no_workload() -> None:
    deny = ap("trustusbank-bank-mcp", "selector: {}\naction: DENY\nrules:\n  - {}")

    assert not applies_to(deny, ACCOUNT_MCP)
    assert decide(conn(SUPPORT_BOT), ACCOUNT_MCP, deny).allowed


def test_target_refs_policy_is_not_enforced_by_ztunnel() -> None:
    deny = ap(
        "trustusbank-platform",
        "targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: trustusbank-agentgw}\n"
        "action: DENY\nrules:\n  - {}",
    )
    gateway_pod = Workload("trustusbank-agentgw", "trustusbank-platform", {"app": "trustusbank-agentgw"})

    assert decide(conn(SUPPORT_BOT), gateway_pod, deny).allowed


# --- policies for a waypoint (part 2 enforces them) -----------------------------------------


def test_policies_for_gateway_and_service() -> None:
    agentgw = "{kind: Gateway, group: gateway.networking.k8s.io, name: trustusbank-agentgw}"
    waypoint_class = "{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}"
    on_gateway = ap(
        "trustusbank-platform",
        f"targetRefs: [{agentgw}]\nrules: [{{}}]",
        name="on-gateway",
    )
    legacy_single = ap(
        "trustusbank-platform",
        f"targetRef: {agentgw}\nrules: [{{}}]",
        name="legacy",
    )
    on_service = ap(
        "trustusbank-platform",
        "targetRefs: [{kind: Service, group: '', name: agentregistry}]\nrules: [{}]",
        name="on-service",
    )
    on_class = ap(
        "istio-system",
        f"targetRefs: [{waypoint_class}]\nrules: [{{}}]",
        name="on-class",
    )
    other_ns = ap(
        "trustusbank-bank-mcp",
        f"targetRefs: [{agentgw}]\nrules: [{{}}]",
    )
    selector = ap("trustusbank-platform", "selector: {matchLabels: {app: trustusbank-agentgw}}\nrules: [{}]")
    everything = [on_gateway, legacy_single, on_service, on_class, other_ns, selector]

    gateway = policies_for_gateway(everything, "trustusbank-agentgw", "trustusbank-platform")
    assert [p.name for p in gateway] == ["legacy", "on-gateway"]
    with_class = policies_for_gateway(
        everything, "trustusbank-agentgw", "trustusbank-platform", gateway_class="istio-waypoint"
    )
    assert [p.name for p in with_class] == ["on-class", "legacy", "on-gateway"]
    assert policies_for_service(everything, "agentregistry", "trustusbank-platform") == [on_service]
    assert (
        policies_for_service(everything, "agentregistry", "trustusbank-platform", kind="ServiceEntry") == []
    )


# --- AUDIT, CUSTOM, dry-run, failure ---------------------------------------------------------


def test_audit_is_ignored_at_ztunnel() -> None:
    # istiod never sends AUDIT to ztunnel, so it neither changes nor records anything there.
    audit = ap(
        "external-attacker",
        "action: AUDIT\nrules:\n  - from: [{source: {namespaces: ['trustusbank-*']}}]",
        name="audit-bank",
    )
    deny_all = ap("external-attacker", "action: DENY\nrules: [{}]", name="deny-all")

    assert decide(conn(CONVERTER), ATTACKER, audit) == Decision(True, "no allow policies, allow")
    assert decide(conn(CONVERTER), ATTACKER, audit, deny_all) == Decision(
        False, "explicitly denied by: external-attacker/deny-all", "external-attacker/deny-all"
    )


def test_custom_policy_is_ignored_at_ztunnel_as_istiod_never_sends_it() -> None:
    # istio/istio pilot/pkg/serviceregistry/ambient/authorization.go: for a CUSTOM policy istiod
    # writes the status "ztunnel does not support the CUSTOM action" and sends ztunnel nothing.
    custom = ap(
        "external-attacker",
        "action: CUSTOM\nprovider: {name: ext-authz}\nrules: [{}]",
        name="ext-authz",
    )
    allow_bank = ap(
        "external-attacker",
        "rules:\n  - from: [{source: {namespaces: ['trustusbank-*']}}]",
        name="allow-bank",
    )

    assert decide(conn(CONVERTER), ATTACKER, custom) == Decision(True, "no allow policies, allow")
    # It neither denies nor counts as an ALLOW policy: the ALLOW alone decides.
    assert decide(conn(CONVERTER), ATTACKER, custom, allow_bank) == Decision(
        True, "allowed by: external-attacker/allow-bank", "external-attacker/allow-bank"
    )
    assert decide(conn(FX_API), ATTACKER, custom, allow_bank) == Decision(
        False, "allow policies exist, but none allowed"
    )


def test_dry_run_policy_is_recorded_not_enforced() -> None:
    dry = ap(
        "external-attacker",
        "action: DENY\nrules: [{}]",
        name="try-me",
        extra_meta="  annotations:\n    istio.io/dry-run: 'true'\n",
    )

    decision = decide(conn(CONVERTER), ATTACKER, dry)

    assert decision == Decision(True, "no allow policies, allow", dry_run=("external-attacker/try-me",))


def test_error_while_deciding_denies_and_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object, **__: object) -> list[AuthorizationPolicy]:
        raise RuntimeError("policy store corrupted")

    monkeypatch.setattr(evaluate_module, "policies_for_workload", broken)

    with caplog.at_level(logging.ERROR, logger=evaluate_module.__name__):
        decision = authorize(conn(SUPPORT_BOT), ACCOUNT_MCP, [])

    assert decision == Decision(False, "authorization failed closed: RuntimeError: policy store corrupted")
    assert "denying" in caplog.text
    assert "policy store corrupted" in caplog.text


def test_malformed_policy_object_denies() -> None:
    # A policy built by hand around validation cannot be evaluated: deny, do not guess.
    broken = AuthorizationPolicy("bad", "trustusbank-bank-mcp", rules=((None,),))  # type: ignore[arg-type]

    decision = decide(conn(SUPPORT_BOT), ACCOUNT_MCP, broken)

    assert not decision.allowed
    assert decision.reason.startswith("authorization failed closed: AttributeError")
