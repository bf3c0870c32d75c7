"""AuthorizationPolicy lint: each fixture is one mistake, each finding asserted exactly.

Where a finding quotes istiod, the quote is `mesh.authz.ztunnel`'s verbatim status text,
so these tests also pin that the lint reports what istiod would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.lint import DEPLOY, by_code, fixture, line_of, lint, shape, unexpected
from trustusbank.lint import Severity
from trustusbank.mesh.authz.l4 import ALLOW_DROPPED, DENY_MIXED, DENY_NO_EFFECT

E, W = Severity.ERROR, Severity.WARNING


def test_deploy_bundle_has_no_errors_or_warnings() -> None:
    findings = lint(DEPLOY)

    assert [f.headline() for f in unexpected(findings)] == []


def test_allow_rule_with_http_field_is_dropped_at_ztunnel() -> None:
    path = fixture("istio-allow-l7-dropped.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (line_of(path, "methods:"), E, "istio-allow-rule-dropped", "trustusbank-bank-mcp/allow-agents-get", 0)
    ]
    assert finding.file == path
    assert "this rule is dropped by istiod for ztunnel: nothing it allows is allowed" in finding.message
    assert ALLOW_DROPPED in finding.on_cluster
    assert finding.on_cluster.startswith(
        "istiod reports: ztunnel does not support HTTP attributes (found: methods)"
    )


def test_deny_rule_mixing_l4_and_http_denies_more_than_written() -> None:
    path = fixture("istio-deny-l7-broadened.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "methods:"),
            E,
            "istio-deny-rule-broadened",
            "trustusbank-bank-mcp/deny-vendor-deletes",
            0,
        )
    ]
    assert "denies more than written: ALL traffic from namespaces trustusbank-bank-vendors to port 8000" in (
        finding.message
    )
    assert DENY_MIXED in finding.on_cluster


def test_deny_rule_of_http_fields_only_has_no_effect() -> None:
    path = fixture("istio-deny-l7-only.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (line_of(path, "paths:"), E, "istio-deny-rule-no-effect", "trustusbank-bank-mcp/deny-admin-paths", 0)
    ]
    assert "blocks nothing" in finding.message
    assert DENY_NO_EFFECT in finding.on_cluster


def test_seed_act3_deny_vendor_to_attacker_blocks_nothing() -> None:
    path = fixture("seed-deny-vendor-to-attacker.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "hosts:"),
            E,
            "istio-deny-egress-misread",
            "trustusbank-bank-vendors/deny-vendor-to-attacker",
            0,
        )
    ]
    assert "selects app=currency-converter as the *destination*" in finding.message
    assert "`hosts` is L7: it blocks nothing" in finding.message
    assert DENY_NO_EFFECT in finding.on_cluster
    assert (
        "a DENY in external-attacker with `from.source.namespaces: [trustusbank-bank-vendors]` "
        "(as deploy's deny-bank-to-attacker does)"
    ) in finding.on_cluster


def test_seed_act3_policy_against_an_unenrolled_attacker_says_the_fix_needs_enrolment(tmp_path: Path) -> None:
    shutil.copy(fixture("seed-deny-vendor-to-attacker.yaml"), tmp_path)
    shutil.copy(fixture("istio-deny-destination-not-ambient.yaml"), tmp_path)

    [misread] = by_code(lint(tmp_path), "istio-deny-egress-misread")

    assert "external-attacker is not enrolled in ambient either" in misread.on_cluster
    assert "egress waypoint with a ServiceEntry, or a Kubernetes NetworkPolicy" in misread.on_cluster


def test_seed_runbook_l7_precall_block_denies_all_of_port_8080() -> None:
    path = fixture("seed-l7-precall-block.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "methods:"),
            E,
            "istio-deny-rule-broadened",
            "trustusbank-platform/deny-mcp-vendor-route-l7",
            0,
        )
    ]
    assert finding.message.startswith("`methods`, `paths` are HTTP attributes ztunnel cannot see")
    assert (
        "ALL traffic from any source to port 8080 of the workloads selected by app=trustusbank-agentgw"
        in (finding.message)
    )
    assert DENY_MIXED in finding.on_cluster


def test_l7_precall_block_next_to_the_gateway_says_how_to_block_at_the_waypoint(tmp_path: Path) -> None:
    bundle = tmp_path / "deploy"
    shutil.copytree(DEPLOY, bundle)
    shutil.copy(fixture("seed-l7-precall-block.yaml"), bundle / "08-defence")

    findings = [f for f in lint(bundle) if f.policy == "trustusbank-platform/deny-mcp-vendor-route-l7"]

    assert [(f.severity, f.code) for f in findings] == [
        (W, "istio-selector-matches-nothing"),
        (E, "istio-deny-rule-broadened"),
    ]
    assert "selects the pod of Gateway trustusbank-platform/trustusbank-agentgw" in findings[1].on_cluster
    assert "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: trustusbank-agentgw}]" in (
        findings[1].on_cluster
    )
    # The agentgateway controller labels its pods app.kubernetes.io/name, not app: the selector misses.
    assert "selector app=trustusbank-agentgw matches no Deployment or Gateway pod" in findings[0].message


def test_selector_that_matches_no_workload_is_a_warning() -> None:
    path = fixture("istio-selector-matches-nothing.yaml")

    assert shape(lint(path)) == [
        (
            line_of(path, "selector:", occurrence=2),
            W,
            "istio-selector-matches-nothing",
            "trustusbank-bank-mcp/allow-waypoint-to-account",
            None,
        )
    ]


def test_selector_is_not_judged_without_workloads_in_the_input() -> None:
    # Linted alone, the write-up's policy selects a converter we cannot see: no selector finding.
    assert by_code(lint(fixture("seed-deny-vendor-to-attacker.yaml")), "istio-selector-matches-nothing") == []


def test_policy_in_a_namespace_outside_ambient_is_an_error_as_nothing_enforces_it() -> None:
    path = fixture("istio-namespace-not-ambient.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "namespace: trustusbank-observability"),
            E,
            "istio-not-enrolled",
            "trustusbank-observability/allow-prometheus",
            None,
        )
    ]
    assert finding.message.endswith("no enforcement point")


def test_deny_whose_destination_is_outside_ambient_enforces_nothing() -> None:
    path = fixture("istio-deny-destination-not-ambient.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "namespace: external-attacker"),
            E,
            "istio-deny-not-enrolled",
            "external-attacker/deny-bank-to-attacker",
            None,
        )
    ]
    assert finding.message.startswith("nothing enforces this: namespace external-attacker is not enrolled")
    assert "egress waypoint with a ServiceEntry" in finding.on_cluster


def test_spiffe_prefix_in_principals_never_matches() -> None:
    path = fixture("istio-spiffe-principal.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "principals:"),
            E,
            "istio-spiffe-principal",
            "trustusbank-bank-mcp/allow-from-waypoint",
            0,
        )
    ]
    assert "never matches" in finding.message
    assert "'cluster.local/ns/trustusbank-platform/sa/trustusbank-agentgw'" in finding.message


def test_custom_action_at_ztunnel_is_an_error() -> None:
    # istiod never sends CUSTOM to ztunnel (pilot/pkg/serviceregistry/ambient/authorization.go):
    # without targetRefs it protects nothing, like a DENY that does nothing.
    path = fixture("istio-custom-at-ztunnel.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "action: CUSTOM"),
            E,
            "istio-custom-at-ztunnel",
            "trustusbank-bank-mcp/ext-authz-mcp",
            None,
        )
    ]
    assert "ztunnel does not support the CUSTOM action" in finding.message
    assert "protects nothing" in finding.on_cluster


def test_target_refs_policy_on_a_service_without_waypoint_is_a_warning() -> None:
    path = fixture("istio-target-without-waypoint.yaml")
    [finding] = lint(path)

    assert shape([finding]) == [
        (
            line_of(path, "- kind: Service"),
            W,
            "istio-target-no-waypoint",
            "trustusbank-bank-mcp/deny-account-deletes",
            None,
        )
    ]
    assert "which no waypoint serves" in finding.message


def test_target_refs_policy_on_the_waypoint_gateway_is_fine(tmp_path: Path) -> None:
    bundle = tmp_path / "deploy"
    shutil.copytree(DEPLOY, bundle)
    (bundle / "08-defence" / "l7.yaml").write_text(
        """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-converter-route
  namespace: trustusbank-platform
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: trustusbank-agentgw
  action: DENY
  rules:
    - to:
        - operation:
            paths: ["/mcp/currency*"]
"""
    )

    assert [f for f in lint(bundle) if f.policy == "trustusbank-platform/deny-converter-route"] == []
