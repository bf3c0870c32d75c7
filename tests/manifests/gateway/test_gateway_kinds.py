"""Gateway, HTTPRoute, AgentgatewayBackend and AgentgatewayPolicy as bundle kinds.

The schemas use the real CRDs' field names; a misspelt field is an error with its path and line,
a real field the embedded waypoint does not implement says so, and the CRDs' CEL rules run as checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.paths import DEPLOY
from trustusbank.manifests.bundle import check_bundle, load_bundle
from trustusbank.manifests.gateway.objects import (
    AgentgatewayBackend,
    AgentgatewayPolicy,
    ExtProc,
    Gateway,
    HTTPRoute,
    LocalRateLimitSpec,
    McpTarget,
    TargetRef,
)
from trustusbank.manifests.kinds import KINDS, known_kinds

AGENTGATEWAY_DIR = DEPLOY / "06-agentgateway"

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"


def problems(root: Path, text: str) -> list[tuple[int, str]]:
    (root / "00-namespace.yaml").write_text(NAMESPACE)
    (root / "doc.yaml").write_text(text)
    return [(p.line, p.message) for p in check_bundle(root).problems]


def doc(api: str, kind: str, spec: str) -> str:
    """A document whose spec starts on line 7 (the first spec line is line 7)."""
    body = "".join(f"  {line}\n" for line in spec.strip("\n").splitlines())
    return f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: x\n  namespace: shop\nspec:\n{body}"


def agw_policy(spec: str) -> str:
    return doc("agentgateway.dev/v1alpha1", "AgentgatewayPolicy", spec)


def route(spec: str) -> str:
    return doc("gateway.networking.k8s.io/v1", "HTTPRoute", spec)


def backend(spec: str) -> str:
    return doc("agentgateway.dev/v1alpha1", "AgentgatewayBackend", spec)


MCP_AUTHZ = """
targetRefs:
  - {group: agentgateway.dev, kind: AgentgatewayBackend, name: account-mcp}
backend:
  mcp:
    authorization:
      action: Allow
      policy:
        matchExpressions:
          - 'mcp.tool.name == "get_balance"'
"""


def test_kinds_are_registered() -> None:
    kinds = known_kinds()

    for kind in ("Gateway", "HTTPRoute"):
        assert f"{kind} (gateway.networking.k8s.io/v1)" in kinds
        assert f"{kind} (gateway.networking.k8s.io/v1beta1)" in kinds
    assert "AgentgatewayBackend (agentgateway.dev/v1alpha1)" in kinds
    assert "AgentgatewayPolicy (agentgateway.dev/v1alpha1)" in kinds


@pytest.mark.parametrize("file", sorted(AGENTGATEWAY_DIR.glob("*.yaml")), ids=lambda f: f.name)
def test_deployed_manifests_validate(file: Path) -> None:
    for body in yaml.safe_load_all(file.read_text()):
        assert KINDS[(body["apiVersion"], body["kind"])].validate(body) == [], body["metadata"]["name"]


def test_typed_views(tmp_path: Path) -> None:
    (tmp_path / "00-namespace.yaml").write_text(NAMESPACE)
    (tmp_path / "policy.yaml").write_text(
        agw_policy(MCP_AUTHZ)
        + "---\n"
        + agw_policy(
            "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
            "traffic: {rateLimit: {local: [{requests: 5, unit: Seconds, burst: 2}]}}"
        ).replace("name: x", "name: y")
    )
    bundle = load_bundle(tmp_path)

    mcp = bundle.view("AgentgatewayPolicy", "shop", "x")
    limit = bundle.view("AgentgatewayPolicy", "shop", "y")
    assert isinstance(mcp, AgentgatewayPolicy)
    assert isinstance(limit, AgentgatewayPolicy)
    assert mcp.target_refs == (TargetRef("agentgateway.dev", "AgentgatewayBackend", "account-mcp"),)
    assert mcp.mcp_authorization == {
        "action": "Allow",
        "policy": {"matchExpressions": ['mcp.tool.name == "get_balance"']},
    }
    assert (mcp.traffic_authorization, mcp.rate_limits) == (None, None)
    assert limit.rate_limits == (LocalRateLimitSpec(5, "Seconds", 2),)


def test_views_of_the_deployed_objects() -> None:
    bundle = load_bundle(AGENTGATEWAY_DIR.parent)
    gateway = bundle.view("Gateway", "trustusbank-platform", "trustusbank-agentgw")
    route_view = bundle.view("HTTPRoute", "trustusbank-platform", "account-mcp-route")
    backend_view = bundle.view("AgentgatewayBackend", "trustusbank-platform", "account-mcp")

    assert isinstance(gateway, Gateway)
    assert [(item.name, item.allowed_from) for item in gateway.listeners] == [
        ("mesh", "All"),
        ("http", "Same"),
    ]
    assert isinstance(route_view, HTTPRoute)
    assert route_view.rules[0].matches[0].path.value == "/mcp/account"
    assert isinstance(backend_view, AgentgatewayBackend)
    assert backend_view.targets == (
        McpTarget(
            "account-mcp",
            "account-mcp.trustusbank-bank-mcp.svc.cluster.local",
            8000,
            "/mcp",
            "StreamableHTTP",
        ),
    )


# --- AgentgatewayPolicy ------------------------------------------------------------------------------


def test_misspelt_field_has_path_line_and_suggestion(tmp_path: Path) -> None:
    broken = agw_policy(MCP_AUTHZ.replace("matchExpressions", "matchExpression"))

    assert problems(tmp_path, broken) == [
        (
            13,
            "AgentgatewayPolicy x: spec.backend.mcp.authorization.policy: "
            "'matchExpressions' is a required property",
        ),
        (
            14,
            "AgentgatewayPolicy x: spec.backend.mcp.authorization.policy.matchExpression: "
            "unknown field (did you mean 'matchExpressions'?)",
        ),
    ]


def test_the_write_ups_mcp_method_shape_is_caught(tmp_path: Path) -> None:
    """`traffic.authorization` cannot target a backend; the write-up's expression itself compiles."""
    spec = """
targetRefs:
  - {group: agentgateway.dev, kind: AgentgatewayBackend, name: account-mcp}
traffic:
  authorization:
    policy:
      matchExpressions: ['mcp.method == "tools/call"']
"""
    assert problems(tmp_path, agw_policy(spec)) == [
        (
            9,
            "AgentgatewayPolicy x: spec.traffic: the 'traffic' field can only target a Gateway, "
            "ListenerSet, GRPCRoute, HTTPRoute, or InferencePool",
        )
    ]


def test_a_real_but_unimplemented_field_is_not_called_a_typo(tmp_path: Path) -> None:
    spec = MCP_AUTHZ + "traffic:\n  extAuth: {}\n"
    spec = spec.replace("kind: AgentgatewayBackend, name: account-mcp", "kind: Gateway, name: gw").replace(
        "agentgateway.dev,", "gateway.networking.k8s.io,"
    )

    assert problems(tmp_path, agw_policy(spec)) == [
        (
            17,
            "AgentgatewayPolicy x: spec.traffic.extAuth: not supported: "
            "agentgateway has this field, the embedded waypoint does not implement it",
        )
    ]


def test_expression_that_does_not_compile(tmp_path: Path) -> None:
    broken = agw_policy(MCP_AUTHZ.replace("'mcp.tool.name == \"get_balance\"'", "'mcp.tool.name =='"))

    [(line, message)] = problems(tmp_path, broken)

    assert line == 15
    assert message.startswith(
        "AgentgatewayPolicy x: spec.backend.mcp.authorization.policy.matchExpressions[0]: "
        "not a valid CEL expression: Failed to parse expression"
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            MCP_AUTHZ.replace("action: Allow", "action: allow"),
            "spec.backend.mcp.authorization.action: 'allow' is not one of ['Allow', 'Deny', 'Require']",
        ),
        (
            MCP_AUTHZ.replace(
                "group: agentgateway.dev, kind: AgentgatewayBackend", "group: '', kind: ConfigMap"
            ),
            "spec.targetRefs[0]: targetRefs may only reference Gateway, HTTPRoute, GRPCRoute, ListenerSet, "
            "Service, AgentgatewayBackend, or InferencePool resources",
        ),
        (
            MCP_AUTHZ.replace("name: account-mcp}", "name: account-mcp, sectionName: t}"),
            "spec.backend.mcp: backend.mcp may not target an AgentgatewayBackend sectionName",
        ),
        (
            MCP_AUTHZ.replace("{group: agentgateway.dev,", "{"),
            "spec.targetRefs[0]: 'group' is a required property",
        ),
        (
            "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
            "traffic: {rateLimit: {local: [{tokens: 100, unit: Minutes}]}}",
            "spec.traffic.rateLimit.local[0].tokens: not supported: "
            "`tokens` limits count LLM tokens; the embedded waypoint has no LLM backends",
        ),
        (
            "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
            "traffic: {rateLimit: {local: [{requests: 1, unit: Days}]}}",
            "spec.traffic.rateLimit.local[0].unit: 'Days' is not one of ['Seconds', 'Minutes', 'Hours']",
        ),
        (
            "targetRefs: [{group: '', kind: Service, name: api}]\n"
            "backend: {mcp: {authorization: {policy: {matchExpressions: ['true']}}}}",
            "spec.backend.mcp: backend.mcp may not be used with a Service target",
        ),
        (
            "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]",
            "spec: At least one of traffic, frontend, or backend must be provided.",
        ),
    ],
)
def test_policy_rules(tmp_path: Path, spec: str, expected: str) -> None:
    messages = [message for _, message in problems(tmp_path, agw_policy(spec))]

    assert f"AgentgatewayPolicy x: {expected}" in messages


# --- HTTPRoute ---------------------------------------------------------------------------------------

ROUTE = """
parentRefs: [{name: gw}]
rules:
  - matches:
      - path: {type: PathPrefix, value: /mcp/account}
    filters:
      - type: URLRewrite
        urlRewrite:
          path: {type: ReplacePrefixMatch, replacePrefixMatch: /mcp}
    backendRefs:
      - {group: agentgateway.dev, kind: AgentgatewayBackend, name: account-mcp}
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            ROUTE.replace("type: PathPrefix", "type: Prefix"),
            "spec.rules[0].matches[0].path.type: 'Prefix' is not one of",
        ),
        (
            ROUTE.replace("value: /mcp/account", "value: mcp/account"),
            "must be an absolute path (start with '/')",
        ),
        (
            ROUTE.replace("type: PathPrefix", "type: Exact"),
            "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match",
        ),
        (
            ROUTE.replace("replacePrefixMatch: /mcp", "replaceFullPath: /mcp"),
            "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'",
        ),
        (
            ROUTE.replace(
                "{group: agentgateway.dev, kind: AgentgatewayBackend, name: account-mcp}", "{name: api}"
            ),
            "spec.rules[0].backendRefs[0]: Must have port for Service reference",
        ),
        (
            ROUTE.replace("parentRefs: [{name: gw}]", "parentRefs: [{kind: Mesh, name: gw}]"),
            "spec.parentRefs[0].kind",
        ),
        (
            ROUTE.replace("    backendRefs:\n      - {group", "    fooRefs:\n      - {group"),
            "spec.rules[0].fooRefs: unknown field",
        ),
        (
            ROUTE.replace("type: URLRewrite", "type: RequestMirror"),
            "spec.rules[0].filters[0].type: not supported: RequestMirror filters",
        ),
        (ROUTE + "    timeouts: {request: 10s}\n", "spec.rules[0].timeouts: not supported"),
        (
            ROUTE.split("    backendRefs:")[0],
            "a rule needs backendRefs",
        ),
    ],
)
def test_route_rules(tmp_path: Path, spec: str, expected: str) -> None:
    assert problems(tmp_path, route(ROUTE)) == []
    messages = [message for _, message in problems(tmp_path, route(spec))]

    assert any(expected in message for message in messages), messages


# --- AgentgatewayBackend and Gateway -----------------------------------------------------------------

BACKEND = """
mcp:
  targets:
    - name: account-mcp
      static: {host: account-mcp.bank.svc.cluster.local, port: 8000, path: /mcp, protocol: StreamableHTTP}
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            BACKEND.replace("protocol: StreamableHTTP", "protocol: HTTP"),
            "protocol: 'HTTP' is not one of ['SSE', 'StreamableHTTP']",
        ),
        (
            BACKEND.replace("host: account-mcp.bank.svc.cluster.local", "backendRef: {name: a}, host: b"),
            "exactly one of the fields in [host backendRef] must be set",
        ),
        (
            BACKEND + "    - name: second\n      static: {host: b, port: 1}\n",
            "not supported: several targets on one backend",
        ),
        ("static: {host: a, port: 80}", "spec.static: not supported"),
        (BACKEND.replace("port: 8000", "port: 0"), "0 is less than the minimum of 1"),
        (BACKEND.replace("name: account-mcp", "name: Account_MCP"), "does not match"),
    ],
)
def test_backend_rules(tmp_path: Path, spec: str, expected: str) -> None:
    assert problems(tmp_path, backend(BACKEND)) == []
    messages = [message for _, message in problems(tmp_path, backend(spec))]

    assert any(expected in message for message in messages), messages


GATEWAY = """
gatewayClassName: agentgateway
listeners:
  - {name: mesh, port: 15008, protocol: HBONE}
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (GATEWAY.replace("agentgateway", "istio"), "the embedded runtime runs only agentgateway's classes"),
        (GATEWAY + "  - {name: mesh, port: 8080, protocol: HTTP}\n", "listener name 'mesh' must be unique"),
        (GATEWAY.replace("HBONE", "hbone"), "'hbone' is not one of"),
        (
            GATEWAY.replace("protocol: HBONE}", "protocol: HTTPS, tls: {}}"),
            "spec.listeners[0].tls: not supported",
        ),
        (
            GATEWAY.replace("listeners:\n  - {name: mesh, port: 15008, protocol: HBONE}", "listeners: []"),
            "should be non-empty",
        ),
    ],
)
def test_gateway_rules(tmp_path: Path, spec: str, expected: str) -> None:
    assert problems(tmp_path, doc("gateway.networking.k8s.io/v1", "Gateway", GATEWAY)) == []
    messages = [
        message
        for _, message in problems(tmp_path, doc("gateway.networking.k8s.io/v1beta1", "Gateway", spec))
    ]

    assert any(expected in message for message in messages), messages


# --- traffic.extProc (the MCP guard) ---------------------------------------------------------------

GUARDED = """
targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: account-mcp-route}]
traffic:
  extProc:
    backendRef: {name: mcp-guard, port: 8080}
"""


def test_ext_proc_with_a_service_validates_and_is_typed(tmp_path: Path) -> None:
    text = agw_policy(GUARDED)

    assert problems(tmp_path, text) == []
    policy = AgentgatewayPolicy.from_manifest(load_bundle(tmp_path).get("AgentgatewayPolicy", "shop", "x"))
    assert policy.ext_proc == ExtProc("mcp-guard", "shop", 8080)
    assert policy.ext_proc.ref == "shop/mcp-guard"


def test_ext_proc_namespace_and_fail_closed_are_kept(tmp_path: Path) -> None:
    text = agw_policy(
        GUARDED.replace("port: 8080}", "port: 8080, namespace: guards}") + "    failureMode: FailClosed\n"
    )

    assert problems(tmp_path, text) == []
    policy = AgentgatewayPolicy.from_manifest(load_bundle(tmp_path).get("AgentgatewayPolicy", "shop", "x"))
    assert policy.ext_proc == ExtProc("mcp-guard", "guards", 8080)


def test_a_policy_without_ext_proc_has_none(tmp_path: Path) -> None:
    assert problems(tmp_path, agw_policy(MCP_AUTHZ)) == []
    policy = AgentgatewayPolicy.from_manifest(load_bundle(tmp_path).get("AgentgatewayPolicy", "shop", "x"))
    assert policy.ext_proc is None


@pytest.mark.parametrize(
    ("ext_proc", "expected"),
    [
        (
            "{}",
            "spec.traffic.extProc: exactly one of backendRef or url must be set unless conditional is set",
        ),
        ("{failureMode: FailClosed}", "spec.traffic.extProc: exactly one of backendRef or url must be set"),
        ("{backendRef: {name: mcp-guard}}", "spec.traffic.extProc.backendRef: Must have port for Service"),
        ("{backendRef: {port: 8080}}", "spec.traffic.extProc.backendRef: 'name' is a required property"),
        (
            "{backendRef: {name: mcp-guard, port: '8080'}}",
            "spec.traffic.extProc.backendRef.port: expected integer, got string",
        ),
        ("{backendRef: {name: mcp-guard, port: 0}}", "spec.traffic.extProc.backendRef.port: 0 is less than"),
        ("{backendRef: [mcp-guard]}", "spec.traffic.extProc.backendRef: expected object, got array"),
        ("mcp-guard", "spec.traffic.extProc: expected object, got string"),
        (
            "{backendRef: {name: g, port: 1}, failureMode: Open}",
            "spec.traffic.extProc.failureMode: 'Open' is not",
        ),
        (
            "{backendRef: {name: g, port: 1}, failureMode: FailOpen}",
            "spec.traffic.extProc.failureMode: not supported: failureMode FailOpen",
        ),
        (
            "{backendRef: {name: g, port: 1}, backendref: {}}",
            "spec.traffic.extProc.backendref: unknown field (did you mean 'backendRef'?)",
        ),
        ("{url: 'http://guard:8080'}", "spec.traffic.extProc.url: not supported: an ext_proc `url`"),
        (
            "{backendRef: {name: g, port: 1}, processingOptions: {requestBodyMode: Buffered}}",
            "spec.traffic.extProc.processingOptions: not supported: agentgateway has this field",
        ),
        (
            "{backendRef: {group: agentgateway.dev, kind: AgentgatewayBackend, name: g}}",
            "spec.traffic.extProc.backendRef.kind: not supported: an AgentgatewayBackend as processor",
        ),
        (
            "{backendRef: {group: apps, kind: Deployment, name: g, port: 1}}",
            "spec.traffic.extProc.backendRef.kind: backendRef apps/Deployment: the processor is a Service",
        ),
    ],
)
def test_ext_proc_rules(tmp_path: Path, ext_proc: str, expected: str) -> None:
    spec = GUARDED.replace(
        "  extProc:\n    backendRef: {name: mcp-guard, port: 8080}\n", f"  extProc: {ext_proc}\n"
    )
    messages = [message for _, message in problems(tmp_path, agw_policy(spec))]

    assert any(m.startswith(f"AgentgatewayPolicy x: {expected}") for m in messages), messages


def test_ext_proc_on_an_agentgateway_backend_is_refused_as_the_crd_does(tmp_path: Path) -> None:
    spec = GUARDED.replace(
        "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: account-mcp-route}",
        "{group: agentgateway.dev, kind: AgentgatewayBackend, name: account-mcp}",
    )
    messages = [message for _, message in problems(tmp_path, agw_policy(spec))]

    assert messages == [
        "AgentgatewayPolicy x: spec.traffic: the 'traffic' field can only target a Gateway, "
        "ListenerSet, GRPCRoute, HTTPRoute, or InferencePool"
    ]
