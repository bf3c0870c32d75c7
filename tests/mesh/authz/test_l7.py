"""AuthorizationPolicy at the waypoint: L7 fields apply as written (unlike at ztunnel)."""

from __future__ import annotations

from typing import Any

import pytest

from trustusbank.manifests.istio.objects import AuthorizationPolicy
from trustusbank.mesh.authz.l7 import HttpRequest, authorize_request
from trustusbank.mesh.identity.spiffe import SpiffeId

SUPPORT = SpiffeId("cluster.local", "trustusbank-bank-agents", "support-bot")
TRIAGE = SpiffeId("cluster.local", "trustusbank-bank-agents", "triage-bot")
TARGET = {
    "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "trustusbank-agentgw"}]
}


def policy(name: str, spec: dict[str, Any]) -> AuthorizationPolicy:
    return AuthorizationPolicy.from_spec(name, "trustusbank-platform", {**TARGET, **spec})


def request(
    source: SpiffeId | None = SUPPORT, path: str = "/mcp/ticket", method: str = "POST", **headers: str
) -> HttpRequest:
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    return HttpRequest(
        source, "127.20.1.10", 8080, "trustusbank-agentgw.trustusbank-platform:8080", method, path, named
    )


DENY_TICKETS = policy(
    "deny-tickets", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/mcp/ticket*"]}}]}]}
)


def test_deny_on_paths_only_applies_where_ztunnel_would_ignore_it() -> None:
    denied = authorize_request([DENY_TICKETS], request(path="/mcp/ticket/"))
    assert (denied.allowed, denied.reason) == (
        False,
        "explicitly denied by: trustusbank-platform/deny-tickets",
    )
    assert authorize_request([DENY_TICKETS], request(path="/mcp/account")).allowed


@pytest.mark.parametrize(
    ("rule", "req", "allowed"),
    [
        (
            {
                "from": [
                    {"source": {"principals": ["cluster.local/ns/trustusbank-bank-agents/sa/support-bot"]}}
                ]
            },
            request(),
            True,
        ),
        (
            {
                "from": [
                    {"source": {"principals": ["cluster.local/ns/trustusbank-bank-agents/sa/support-bot"]}}
                ]
            },
            request(TRIAGE),
            False,
        ),
        (
            {
                "from": [{"source": {"principals": ["*/sa/*-bot"]}}],
                "to": [{"operation": {"methods": ["GET"]}}],
            },
            request(),
            False,
        ),
        ({"to": [{"operation": {"hosts": ["trustusbank-agentgw.trustusbank-platform"]}}]}, request(), True),
        (
            {"when": [{"key": "request.headers[x-tenant]", "values": ["bank"]}]},
            request(x_tenant="bank"),
            True,
        ),
        (
            {"when": [{"key": "request.headers[x-tenant]", "values": ["bank"]}]},
            request(x_tenant="other"),
            False,
        ),
        ({"from": [{"source": {"requestPrincipals": ["*"]}}]}, request(), False),
        ({"from": [{"source": {"notPrincipals": ["*"]}}]}, request(None), True),
        ({"from": [{"source": {"ipBlocks": ["127.20.0.0/16"]}}]}, request(), True),
    ],
)
def test_allow_rules_with_l7_fields(rule: dict[str, Any], req: HttpRequest, allowed: bool) -> None:
    decision = authorize_request([policy("allow", {"action": "ALLOW", "rules": [rule]})], req)
    assert decision.allowed is allowed, decision.reason


def test_headers_are_matched_by_lower_case_name() -> None:
    rule = {"when": [{"key": "request.headers[X-Tenant]", "values": ["bank"]}]}
    req = HttpRequest(SUPPORT, "127.20.1.10", 8080, "h", "POST", "/", {"x-tenant": "bank"})
    assert authorize_request([policy("allow", {"action": "ALLOW", "rules": [rule]})], req).allowed


def test_custom_fails_closed_and_no_policy_allows() -> None:
    custom = policy("ext", {"action": "CUSTOM", "provider": {"name": "opa"}, "rules": [{}]})
    assert not authorize_request([custom], request()).allowed
    assert authorize_request([], request()).allowed
