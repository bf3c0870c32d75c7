"""The waypoint's routing table: Gateway API matching, agentgateway's upstream paths and policy attachment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.paths import DEPLOY
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.gateway.objects import HeaderModifier, is_waypoint_class
from trustusbank.manifests.manifest import Manifest
from trustusbank.mesh.waypoint.ratelimit import LocalRateLimits, RateLimitBuckets
from trustusbank.mesh.waypoint.routes import Backend, RouteMatch, WaypointConfig, WaypointConfigError

PLATFORM = "trustusbank-platform"

BASE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio.io/use-waypoint: wp
---
apiVersion: v1
kind: Namespace
metadata:
  name: other
---
apiVersion: v1
kind: Namespace
metadata:
  name: edge
  labels:
    team: edge
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: wp
  namespace: shop
spec:
  gatewayClassName: agentgateway-waypoint
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
      allowedRoutes:
        namespaces:
          from: All
    - name: http
      port: 8080
      protocol: HTTP
    - name: edge
      port: 8081
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: Selector
          selector:
            matchLabels:
              team: edge
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: mcp-a
  namespace: shop
spec:
  mcp:
    targets:
      - name: a
        static:
          host: a.tools.svc.cluster.local
          port: 8000
          path: /mcp
          protocol: StreamableHTTP
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: mcp-b
  namespace: shop
spec:
  mcp:
    targets:
      - name: b
        static:
          backendRef:
            name: legacy
          port: 9000
          protocol: SSE
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop
spec:
  ports:
    - port: 80
"""


def route(
    name: str, *rules: str, namespace: str = "shop", parents: str = "[{name: wp, namespace: shop}]"
) -> str:
    """An HTTPRoute; each rule is `<match yaml> -> <backendRef yaml>` in flow style."""
    body = "".join(f"    - {rule}\n" for rule in rules)
    return (
        f"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\nspec:\n  parentRefs: {parents}\n  rules:\n{body}"
    )


def prefix(value: str, backend: str = "mcp-a", extra: str = "") -> str:
    return (
        f"{{matches: [{{path: {{type: PathPrefix, value: {value}}}}}], "
        f"backendRefs: [{backend_ref(backend)}]{extra}}}"
    )


def backend_ref(name: str) -> str:
    if name.startswith("mcp-"):
        return f"{{group: agentgateway.dev, kind: AgentgatewayBackend, name: {name}}}"
    return f"{{name: {name}, port: 80}}"


def policy(name: str, spec: str, namespace: str = "shop") -> str:
    indented = "".join(f"  {line}\n" for line in spec.strip("\n").splitlines())
    return (
        "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayPolicy\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{indented}"
    )


def manifests(tmp_path: Path, *docs: str) -> list[Manifest]:
    (tmp_path / "bundle.yaml").write_text("---\n".join([BASE, *docs]))
    return load_bundle(tmp_path).objects


def config(tmp_path: Path, *docs: str) -> WaypointConfig:
    return WaypointConfig.from_manifests(manifests(tmp_path, *docs), "shop", "wp")


@pytest.fixture(scope="module")
def deployed() -> WaypointConfig:
    return WaypointConfig.from_manifests(load_bundle(DEPLOY).objects, PLATFORM, "trustusbank-agentgw")


# --- the deployed waypoint ---------------------------------------------------------------------------


def test_deploy_bundle_loads_as_the_waypoint(deployed: WaypointConfig) -> None:
    assert deployed.gateway_class == "enterprise-agentgateway-waypoint"
    assert [(item.name, item.port, item.protocol) for item in deployed.listeners] == [
        ("mesh", 15008, "HBONE"),
        ("http", 8080, "HTTP"),
    ]
    assert sorted(r.name for r in deployed.routes) == [
        "account-mcp-route",
        "currency-converter-route",
        "ticket-mcp-route",
        "transaction-mcp-route",
    ]


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/mcp/account", "account-mcp-route"),
        ("/mcp/account/", "account-mcp-route"),
        ("/mcp/account/x", "account-mcp-route"),
        ("/mcp/account?session=1", "account-mcp-route"),
        ("/mcp/transaction/", "transaction-mcp-route"),
        ("/mcp/ticket/", "ticket-mcp-route"),
        ("/mcp/currency/", "currency-converter-route"),
        ("/mcp/accounts", None),
        ("/mcp/Account/", None),
        ("/mcp", None),
        ("/", None),
    ],
)
def test_deployed_route_table(deployed: WaypointConfig, path: str, route: str | None) -> None:
    match = deployed.match(path)

    assert (match.route if match else None) == (f"{PLATFORM}/{route}" if route else None)


def test_mcp_backend_is_reached_at_its_target_path(deployed: WaypointConfig) -> None:
    """agentgateway speaks MCP to the target at `path`; what follows the route prefix is dropped."""
    for path in ("/mcp/account", "/mcp/account/", "/mcp/account/anything/else"):
        match = deployed.match(path)
        assert match is not None
        assert match.upstream_path == "/mcp"
        assert match.backend == Backend(
            "mcp",
            f"{PLATFORM}/account-mcp",
            "account-mcp.trustusbank-bank-mcp.svc.cluster.local",
            8000,
            "/mcp",
            "account-mcp",
            "StreamableHTTP",
        )


def test_deployed_policies_attach_per_backend_and_gateway_wide(deployed: WaypointConfig) -> None:
    account = deployed.match("/mcp/account/")
    ticket = deployed.match("/mcp/ticket/", listener="http")
    assert account is not None
    assert ticket is not None

    assert account.mcp_authorization is not None
    assert ticket.mcp_authorization is not None
    assert {r.where.split(" rule")[0] for r in account.mcp_authorization.rules} == {
        f"AgentgatewayPolicy {PLATFORM}/account-mcp-allowlist"
    }
    assert {r.where.split(" rule")[0] for r in ticket.mcp_authorization.rules} == {
        f"AgentgatewayPolicy {PLATFORM}/ticket-mcp-allowlist"
    }
    assert account.mcp_authorization.target == "account-mcp"
    assert account.http_authorization is None
    # one bucket for the whole Gateway, whichever route or listener a request takes
    assert account.rate_limit is not None
    assert account.rate_limit is ticket.rate_limit
    assert [(lim.requests, lim.unit, lim.burst) for lim in account.rate_limit.limits] == [
        (600, "Minutes", 60)
    ]


def test_waypoint_classes() -> None:
    assert all(
        is_waypoint_class(c)
        for c in ("enterprise-agentgateway-waypoint", "agentgateway-waypoint", "agentgateway")
    )
    assert not is_waypoint_class("istio-waypoint")


# --- matching --------------------------------------------------------------------------------------


def test_longest_prefix_wins_and_exact_beats_prefix(tmp_path: Path) -> None:
    exact = "{matches: [{path: {type: Exact, value: /api/v2/health}}], backendRefs: [{name: api, port: 80}]}"
    table = config(
        tmp_path,
        route("short", prefix("/api", "mcp-a")),
        route("long", prefix("/api/v2/", "mcp-b")),
        route("exact", exact),
    )

    def backend(path: str) -> str | None:
        match = table.match(path)
        return match.backend.ref if match else None

    assert backend("/api") == "shop/mcp-a"
    assert backend("/api/v1/x") == "shop/mcp-a"
    assert backend("/api/v2") == "shop/mcp-b"  # a trailing '/' in the prefix value is ignored
    assert backend("/api/v2/health") == "shop/api"
    assert backend("/api/v2/health/x") == "shop/mcp-b"
    assert backend("/apis") is None


def test_method_and_header_matches_are_more_specific(tmp_path: Path) -> None:
    plain = prefix("/x", "mcp-a")
    method = "{matches: [{path: {value: /x}, method: GET}], backendRefs: [{name: api, port: 80}]}"
    header = (
        "{matches: [{path: {value: /x}, headers: [{name: X-Canary, value: 'yes'}]}], "
        f"backendRefs: [{backend_ref('mcp-b')}]}}"
    )
    table = config(tmp_path, route("r", plain, method, header))

    def rule(method: str, headers: dict[str, str] | None = None) -> int | None:
        match = table.match("/x/y", method, headers=headers)
        return match.rule if match else None

    assert rule("POST") == 0
    assert rule("GET") == 1
    assert rule("POST", {"x-canary": "yes"}) == 2
    assert rule("GET", {"X-Canary": "yes"}) == 1  # method match outranks header matches


def test_ties_go_to_the_first_route_by_name_then_the_first_rule(tmp_path: Path) -> None:
    table = config(
        tmp_path, route("b", prefix("/x", "mcp-b")), route("a", prefix("/x", "mcp-a"), prefix("/x", "mcp-b"))
    )

    match = table.match("/x")
    assert match is not None
    assert (match.route, match.rule) == ("shop/a", 0)


def test_no_matches_means_every_path(tmp_path: Path) -> None:
    table = config(tmp_path, route("all", f"{{backendRefs: [{backend_ref('api')}]}}"))

    assert table.match("/anything", "DELETE") is not None


def test_hostnames(tmp_path: Path) -> None:
    named = route("named", prefix("/", "mcp-a")).replace(
        "  rules:", "  hostnames: [api.example.com, '*.example.org']\n  rules:"
    )
    table = config(tmp_path, named, route("any", prefix("/api", "mcp-b")))

    def backend(host: str | None) -> str | None:
        match = table.match("/api/x", host=host)
        return match.backend.ref if match else None

    assert backend("api.example.com:8080") == "shop/mcp-a"  # the more specific hostname wins first
    assert backend("www.example.org") == "shop/mcp-a"
    assert backend("example.org") == "shop/mcp-b"
    assert backend("other.example.com") == "shop/mcp-b"
    assert backend(None) == "shop/mcp-b"  # hostnames unchecked: back to path precedence


def test_url_rewrite_for_a_service_backend(tmp_path: Path) -> None:
    def rewrite(kind: str, field: str, value: str) -> str:
        return (
            f", filters: [{{type: URLRewrite, urlRewrite: {{path: {{type: {kind}, {field}: '{value}'}}}}}}]"
        )

    table = config(
        tmp_path,
        route(
            "strip",
            prefix("/svc", "api", rewrite("ReplacePrefixMatch", "replacePrefixMatch", "/")),
            parents="[{name: wp}]",
        ),
        route("move", prefix("/old/", "api", rewrite("ReplacePrefixMatch", "replacePrefixMatch", "/new/"))),
        route("full", prefix("/health", "api", rewrite("ReplaceFullPath", "replaceFullPath", "/healthz"))),
        route("keep", prefix("/keep", "api")),
    )

    def upstream(path: str) -> str:
        match = table.match(path)
        assert match is not None
        return match.upstream_path

    assert upstream("/svc") == "/"
    assert upstream("/svc/") == "/"
    assert upstream("/svc/a/b?q=1") == "/a/b"
    assert upstream("/old") == "/new"
    assert upstream("/old/x") == "/new/x"
    assert upstream("/health/deep") == "/healthz"
    assert upstream("/keep/x") == "/keep/x"


def test_sse_target_and_backend_ref_host(tmp_path: Path) -> None:
    match = config(tmp_path, route("r", prefix("/b", "mcp-b"))).match("/b/x")

    assert match is not None
    assert match.backend == Backend(
        "mcp", "shop/mcp-b", "legacy.shop.svc.cluster.local", 9000, "/sse", "b", "SSE"
    )
    assert match.upstream_path == "/sse"


def test_request_header_modifier(tmp_path: Path) -> None:
    modifier = (
        ", filters: [{type: RequestHeaderModifier, requestHeaderModifier: "
        "{set: [{name: X-Env, value: prod}], add: [{name: Via, value: wp}], remove: [Cookie]}}]"
    )
    match = config(tmp_path, route("r", prefix("/x", "api", modifier))).match("/x")

    assert match is not None
    assert match.header_modifier == HeaderModifier((("X-Env", "prod"),), (("Via", "wp"),), ("Cookie",))
    assert match.header_modifier.apply({"Cookie": "a", "Via": "z", "X-Env": "dev"}) == {
        "via": "z,wp",
        "x-env": "prod",
    }


def service(name: str, namespace: str) -> str:
    meta = f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
    return f"apiVersion: v1\nkind: Service\n{meta}spec:\n  ports: [{{port: 80}}]\n"


def test_allowed_routes_by_namespace(tmp_path: Path) -> None:
    table = config(
        tmp_path,
        service("api", "other"),
        service("api", "edge"),
        route("same", prefix("/same", "mcp-a")),
        route(
            "foreign",
            "{matches: [{path: {value: /foreign}}], backendRefs: [{name: api, port: 80}]}",
            namespace="other",
        ),
        route(
            "edge",
            "{matches: [{path: {value: /edge}}], backendRefs: [{name: api, port: 80}]}",
            namespace="edge",
        ),
    )

    def listeners(path: str) -> list[str]:
        return [name for name in ("mesh", "http", "edge") if table.match(path, listener=name)]

    assert listeners("/same") == [
        "mesh",
        "http",
    ]  # `from: Same` by default; the edge listener selects by label
    assert listeners("/foreign") == ["mesh"]
    assert listeners("/edge") == ["mesh", "edge"]


def test_section_name_binds_one_listener(tmp_path: Path) -> None:
    table = config(tmp_path, route("r", prefix("/x"), parents="[{name: wp, sectionName: http}]"))

    assert table.match("/x", listener="mesh") is None
    match = table.match("/x")
    assert match is not None
    assert match.listener == "http"


def test_route_bound_to_a_service_serves_only_that_service(tmp_path: Path) -> None:
    """A Service in a namespace labelled `istio.io/use-waypoint: wp` sends its traffic here."""
    table = config(
        tmp_path, route("svc", prefix("/", "api"), parents="[{group: '', kind: Service, name: api}]")
    )

    match = table.match("/v1", "GET", host="api.shop.svc.cluster.local:80")
    assert match is not None
    assert match.listener == "mesh"
    assert table.match("/v1", "GET", host="other.shop.svc.cluster.local") is None
    assert table.match("/v1", "GET") is None


def test_routes_of_other_gateways_do_not_attach(tmp_path: Path) -> None:
    table = config(tmp_path, route("r", prefix("/x"), parents="[{name: another-gateway}]"))

    assert table.routes == []
    assert table.match("/x") is None


# --- policy attachment -------------------------------------------------------------------------------

GATEWAY_LIMIT = """
targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]
traffic:
  rateLimit:
    local: [{requests: 2, unit: Minutes}]
"""


def test_gateway_wide_rate_limit_is_one_bucket_for_every_route(tmp_path: Path) -> None:
    table = config(
        tmp_path, route("a", prefix("/a")), route("b", prefix("/b", "mcp-b")), policy("limit", GATEWAY_LIMIT)
    )
    a, b = table.match("/a"), table.match("/b", listener="http")
    assert a is not None
    assert b is not None
    assert a.rate_limit is not None

    assert a.rate_limit is b.rate_limit
    assert [a.rate_limit.try_acquire(), b.rate_limit.try_acquire(), a.rate_limit.try_acquire()] == [
        True,
        True,
        False,
    ]


def test_a_reload_keeps_the_buckets_of_unchanged_limits_and_resets_changed_ones(tmp_path: Path) -> None:
    """agentgateway updates only the policies that changed; an unrelated apply refills nothing."""
    buckets = RateLimitBuckets()

    def reload(*docs: str) -> LocalRateLimits:
        (tmp_path / "bundle.yaml").write_text("---\n".join([BASE, route("a", prefix("/a")), *docs]))
        table = WaypointConfig.from_manifests(load_bundle(tmp_path).objects, "shop", "wp", buckets=buckets)
        match = table.match("/a")
        assert match is not None
        assert match.rate_limit is not None
        return match.rate_limit

    first = reload(policy("limit", GATEWAY_LIMIT))
    assert [first.try_acquire(), first.try_acquire(), first.try_acquire()] == [True, True, False]

    unrelated = reload(policy("limit", GATEWAY_LIMIT), route("b", prefix("/b", "mcp-b")))
    assert unrelated is first
    assert not unrelated.try_acquire()

    changed = reload(policy("limit", GATEWAY_LIMIT.replace("requests: 2", "requests: 3")))
    assert changed is not first
    assert [changed.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_the_most_specific_rate_limit_wins(tmp_path: Path) -> None:
    route_limit = """
targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: a}]
traffic:
  rateLimit:
    local: [{requests: 5, unit: Seconds}]
"""
    rule_limit = """
targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: a, sectionName: hot}]
traffic:
  rateLimit:
    local: [{requests: 1, unit: Hours, burst: 1}]
"""
    hot = prefix("/a/hot", "mcp-a").replace("{matches", "{name: hot, matches")
    table = config(
        tmp_path,
        route("a", prefix("/a"), hot),
        route("b", prefix("/b")),
        policy("gw", GATEWAY_LIMIT),
        policy("route", route_limit),
        policy("rule", rule_limit),
    )

    def limit(path: str) -> tuple[int, str]:
        match = table.match(path)
        assert match is not None
        assert match.rate_limit is not None
        [only] = match.rate_limit.limits
        return only.requests, only.unit

    assert limit("/b") == (2, "Minutes")
    assert limit("/a") == (5, "Seconds")
    assert limit("/a/hot") == (1, "Hours")


def test_traffic_authorization_merges_every_level(tmp_path: Path) -> None:
    gateway_rule = """
targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]
traffic:
  authorization:
    action: Deny
    policy:
      matchExpressions: ['request.headers["x-block"] == "1"']
"""
    route_rule = """
targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: a}]
traffic:
  authorization:
    policy:
      matchExpressions: ['source.identity.serviceAccount == "support-bot"']
"""
    table = config(
        tmp_path,
        route("a", prefix("/a")),
        route("b", prefix("/b")),
        policy("deny", gateway_rule),
        policy("allow", route_rule),
    )
    a, b = table.match("/a"), table.match("/b")
    assert a is not None
    assert b is not None
    assert a.http_authorization is not None
    assert b.http_authorization is not None

    assert [r.where for r in a.http_authorization.rules] == [
        "AgentgatewayPolicy shop/deny rule 0",
        "AgentgatewayPolicy shop/allow rule 0",
    ]
    assert [r.where for r in b.http_authorization.rules] == ["AgentgatewayPolicy shop/deny rule 0"]


def test_listener_policy_applies_on_that_listener_only(tmp_path: Path) -> None:
    listener_limit = GATEWAY_LIMIT.replace("name: wp}", "name: wp, sectionName: http}")
    table = config(tmp_path, route("a", prefix("/a")), policy("http-only", listener_limit))

    assert (mesh := table.match("/a", listener="mesh")) is not None
    assert (http := table.match("/a", listener="http")) is not None
    assert mesh.rate_limit is None
    assert http.rate_limit is not None


def test_backend_policy_applies_to_its_backend_only(tmp_path: Path) -> None:
    backend_rules = """
targetRefs: [{group: agentgateway.dev, kind: AgentgatewayBackend, name: mcp-a}]
backend:
  mcp:
    authorization:
      policy:
        matchExpressions: ['mcp.tool.name == "ok"']
"""
    gateway_rules = """
targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: wp}]
backend:
  mcp:
    authorization:
      action: Deny
      policy:
        matchExpressions: ['mcp.tool.name == "never"']
"""
    table = config(
        tmp_path,
        route("a", prefix("/a")),
        route("b", prefix("/b", "mcp-b")),
        route("api", prefix("/api", "api")),
        policy("a-only", backend_rules),
        policy("everywhere", gateway_rules),
    )
    a, b, api = table.match("/a"), table.match("/b"), table.match("/api")
    assert a is not None
    assert b is not None
    assert api is not None
    assert a.mcp_authorization is not None
    assert b.mcp_authorization is not None

    assert sorted(r.where for r in a.mcp_authorization.rules) == [
        "AgentgatewayPolicy shop/a-only rule 0",
        "AgentgatewayPolicy shop/everywhere rule 0",
    ]
    assert [r.where for r in b.mcp_authorization.rules] == ["AgentgatewayPolicy shop/everywhere rule 0"]
    assert b.mcp_authorization.target == "b"
    assert api.mcp_authorization is None  # MCP policy needs an MCP backend


def test_policies_in_another_namespace_do_not_attach(tmp_path: Path) -> None:
    backend_rules = """
targetRefs: [{group: agentgateway.dev, kind: AgentgatewayBackend, name: mcp-a}]
backend:
  mcp:
    authorization:
      policy:
        matchExpressions: ['true']
"""
    table = config(
        tmp_path,
        route("a", prefix("/a")),
        policy("limit", GATEWAY_LIMIT, namespace="other"),
        policy("allow-all", backend_rules, namespace="other"),
    )
    match = table.match("/a")

    assert match is not None
    assert (match.rate_limit, match.mcp_authorization, match.http_authorization) == (None, None, None)


# --- what cannot be served -------------------------------------------------------------------------


def test_missing_and_cross_namespace_backends_are_errors(tmp_path: Path) -> None:
    missing = route("missing", prefix("/m", "mcp-nope"))
    foreign = route("foreign", "{backendRefs: [{name: api, namespace: other, port: 80}]}")

    with pytest.raises(WaypointConfigError) as raised:
        config(tmp_path, missing, foreign)

    assert raised.value.problems == [
        "HTTPRoute shop/foreign rule 0: backendRef other/api is in another namespace; "
        "that needs a ReferenceGrant, which the embedded waypoint does not support",
        "HTTPRoute shop/missing rule 0: backendRef AgentgatewayBackend shop/mcp-nope does not exist",
    ]


def test_unknown_gateway_or_class_is_an_error(tmp_path: Path) -> None:
    objects = manifests(tmp_path)
    with pytest.raises(ValueError, match="no such Gateway"):
        WaypointConfig.from_manifests(objects, "shop", "nope")

    gateway = next(m for m in objects if m.kind == "Gateway")
    body = {**gateway.body, "spec": {**gateway.body["spec"], "gatewayClassName": "istio"}}
    with pytest.raises(ValueError, match="'istio' is not agentgateway's"):
        WaypointConfig.from_manifests([dataclasses.replace(gateway, body=body)], "shop", "wp")


def test_a_policy_that_does_not_compile_refuses_the_whole_config(tmp_path: Path) -> None:
    """The bundle check refuses it first; the waypoint refuses it too, so it keeps its last config."""
    objects = manifests(tmp_path, route("a", prefix("/a")), policy("limit", GATEWAY_LIMIT))
    broken = [
        dataclasses.replace(
            m,
            body={
                **m.body,
                "spec": {
                    **m.body["spec"],
                    "traffic": {
                        "authorization": {"policy": {"matchExpressions": ["true", "request.path =="]}}
                    },
                },
            },
        )
        if m.kind == "AgentgatewayPolicy"
        else m
        for m in objects
    ]

    with pytest.raises(ValueError, match=r"AgentgatewayPolicy shop/limit rule 1 does not compile"):
        WaypointConfig.from_manifests(broken, "shop", "wp")


def test_a_policy_calling_a_function_the_waypoint_lacks_refuses_the_whole_config(tmp_path: Path) -> None:
    """agentgateway's `regexReplace` (crates/celx/src/general.rs) is not implemented here: refused
    at load, naming the function, so the waypoint keeps its last config instead of a Deny that
    would never match."""
    objects = manifests(tmp_path, route("a", prefix("/a")), policy("limit", GATEWAY_LIMIT))
    rule = 'request.path.regexReplace("/+", "/").startsWith("/admin")'
    unsupported = [
        dataclasses.replace(
            m,
            body={
                **m.body,
                "spec": {
                    **m.body["spec"],
                    "traffic": {"authorization": {"action": "Deny", "policy": {"matchExpressions": [rule]}}},
                },
            },
        )
        if m.kind == "AgentgatewayPolicy"
        else m
        for m in objects
    ]

    with pytest.raises(
        ValueError, match=r"AgentgatewayPolicy shop/limit rule 0 does not load: .*`regexReplace\(\)`"
    ):
        WaypointConfig.from_manifests(unsupported, "shop", "wp")


# --- traffic.extProc: the MCP guard --------------------------------------------------------------


def guard_policy(target: str, service: str = "mcp-guard", extra: str = "") -> str:
    return f"""
targetRefs: [{target}]
traffic:
  extProc:
    backendRef: {{name: {service}, port: 8080{extra}}}
"""


def test_the_guard_is_taken_from_the_most_specific_level(tmp_path: Path) -> None:
    hot = prefix("/a/hot", "mcp-a").replace("{matches", "{name: hot, matches")
    table = config(
        tmp_path,
        route("a", prefix("/a"), hot),
        route("b", prefix("/b", "mcp-b")),
        route("c", "{backendRefs: [{name: api, port: 80}]}", parents="[{name: wp, sectionName: edge}]"),
        policy(
            "gw",
            guard_policy("{group: gateway.networking.k8s.io, kind: Gateway, name: wp, sectionName: http}"),
        ),
        policy(
            "rule",
            guard_policy(
                "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: a, sectionName: hot}", "hot-guard"
            ),
        ),
    )

    def guard(path: str) -> tuple[str, str, str, int] | None:
        match = table.match(path, listener="http")
        assert match is not None
        g = match.guard
        return None if g is None else (g.policy, g.service, g.host, g.port)

    assert guard("/b") == ("shop/gw", "shop/mcp-guard", "mcp-guard.shop.svc.cluster.local", 8080)
    assert guard("/a") == ("shop/gw", "shop/mcp-guard", "mcp-guard.shop.svc.cluster.local", 8080)
    assert guard("/a/hot") == ("shop/rule", "shop/hot-guard", "hot-guard.shop.svc.cluster.local", 8080)


def test_no_ext_proc_means_no_guard(tmp_path: Path) -> None:
    table = config(tmp_path, route("a", prefix("/a")))

    match = table.match("/a")
    assert match is not None
    assert match.guard is None


def test_the_deployed_bundle_has_no_guard_and_the_extras_policy_guards_every_mcp_route(
    deployed: WaypointConfig,
) -> None:
    assert all(match.guard is None for match in _deployed_mcp_matches(deployed))
    extras = load_bundle(DEPLOY, include=[DEPLOY / "extras" / "mcp-guard-policy.yaml"]).objects
    guarded = WaypointConfig.from_manifests(extras, PLATFORM, "trustusbank-agentgw")

    found = {
        m.backend.ref: (m.guard.policy, m.guard.host, m.guard.port)
        for m in _deployed_mcp_matches(guarded)
        if m.guard
    }
    assert found == {
        f"{PLATFORM}/{name}": (
            f"{PLATFORM}/{name}-guard",
            f"mcp-guard.{PLATFORM}.svc.cluster.local",
            8080,
        )
        for name in ("account-mcp", "transaction-mcp", "ticket-mcp", "currency-converter")
    }


def _deployed_mcp_matches(table: WaypointConfig) -> list[RouteMatch]:
    paths = ("/mcp/account", "/mcp/transaction", "/mcp/ticket", "/mcp/currency")
    matches = [table.match(path, listener="http") for path in paths]
    assert all(m is not None and m.backend.kind == "mcp" for m in matches)
    return [m for m in matches if m is not None]


def test_a_guard_on_a_rule_that_is_not_mcp_or_in_another_namespace_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WaypointConfigError) as raised:
        config(
            tmp_path,
            route("a", prefix("/a", "api")),
            route("b", prefix("/b")),
            policy("on-api", guard_policy("{group: gateway.networking.k8s.io, kind: HTTPRoute, name: a}")),
            policy(
                "far",
                guard_policy(
                    "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: b}", extra=", namespace: other"
                ),
            ),
        )

    assert raised.value.problems == [
        "AgentgatewayPolicy shop/on-api (traffic.extProc) on HTTPRoute shop/a rule 0: backend shop/api "
        "is not MCP; the embedded waypoint's processor call judges MCP JSON-RPC only, "
        "so it cannot guard this rule",
        "AgentgatewayPolicy shop/far (traffic.extProc) on HTTPRoute shop/b rule 0: processor Service "
        "other/mcp-guard is in another namespace; that needs a ReferenceGrant, which the embedded waypoint "
        "does not support",
    ]
