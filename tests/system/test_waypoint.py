"""The five-hop path of the seed's section 7, with the waypoint's MCP policy deciding.

support-bot → its node's ztunnel → (HBONE) waypoint → (HBONE) account-mcp's
ztunnel → account-mcp. Calls are made *as* support-bot: the client runs with
that pod's capture (`trustusbank exec`), so the identity is its SVID's.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.system.conftest import Cluster
from trustusbank.telemetry.tracing import read_spans

SUPPORT_POD = "trustusbank-bank-agents/support-bot"
GATEWAY = "http://trustusbank-agentgw.trustusbank-platform.svc.cluster.local:8080"
WAYPOINT_ID = "spiffe://cluster.local/ns/trustusbank-platform/sa/trustusbank-agentgw"
SUPPORT_BOT = "spiffe://cluster.local/ns/trustusbank-bank-agents/sa/support-bot"
CONVERTER = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"

CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from mcp import Client

    async def main(url, action, args):
        async with Client(url, mode=sys.argv[4] if len(sys.argv) > 4 else "auto") as client:
            if action == "list":
                tools = (await client.list_tools()).tools
                print(json.dumps(sorted(t.name for t in tools)))
            else:
                result = await client.call_tool(action, json.loads(args))
                print(json.dumps({"error": result.is_error, "data": result.structured_content,
                                  "text": [getattr(c, "text", "") for c in result.content]}))

    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
    except Exception as exc:
        print(json.dumps({"exception": type(exc).__name__, "message": str(exc)}))
    """
)


def mcp(
    cluster: Cluster, pod: str, route: str, action: str, args: dict | None = None, mode: str = "auto"
) -> object:
    url = f"{GATEWAY}/mcp/{route}"
    code = CLIENT.replace("sys.argv[1]", repr(url)).replace("sys.argv[2]", repr(action))
    code = code.replace("sys.argv[3]", repr(json.dumps(args or {}))).replace(
        'sys.argv[4] if len(sys.argv) > 4 else "auto"', repr(mode)
    )
    result = cluster.exec_python(pod, code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_refused(result: object) -> None:
    """The MCP client saw the gateway's refusal: a raised error or an error result."""
    assert isinstance(result, dict), result
    assert result.get("exception") or result.get("error"), result


def metrics_text(cluster: Cluster) -> str:
    return "".join(
        httpx.get(f"http://{node.ip}:15020/metrics", trust_env=False).text for node in cluster.topology.nodes
    )


def waypoint_pod_log(cluster: Cluster) -> str:
    return (cluster.files.logs / "pods" / "trustusbank-platform" / "trustusbank-agentgw-0.log").read_text()


def waypoint_log(cluster: Cluster) -> list[dict]:
    path = cluster.files.waypoint_log("trustusbank-platform/trustusbank-agentgw")
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
def test_an_allowed_call_crosses_five_hops_and_arrives_from_the_waypoint(cluster: Cluster, mode: str) -> None:
    answer = mcp(
        cluster,
        SUPPORT_POD,
        "account",
        "get_balance",
        {"customer_id": "12345"},
        mode,
    )
    assert answer == {
        "error": False,
        "data": {"customer_id": "12345", "balance": 4287.55, "currency": "GBP"},
        "text": [json.dumps({"customer_id": "12345", "balance": 4287.55, "currency": "GBP"}, indent=2)],
    }
    allowed = cluster.wait_for(
        lambda: [
            r
            for r in waypoint_log(cluster)
            if r.get("mcp.tool") == "get_balance" and r["decision"] == "allow"
        ],
        what="the waypoint's allow line",
    )[-1]
    assert allowed["src.identity"] == SUPPORT_BOT
    assert allowed["dst.identity"] == "spiffe://cluster.local/ns/trustusbank-bank-mcp/sa/account-mcp"
    assert allowed["route"] == "trustusbank-platform/account-mcp-route"
    assert "account-mcp-allowlist" in (allowed["rule"] or "") or allowed["rule"]
    # One trace: the caller's ztunnel span (its CONNECT carried traceparent), the waypoint's request span.
    trace_id = allowed["trace_id"]
    spans = cluster.wait_for(
        lambda: [
            span
            for path in cluster.files.outputs("traces", "*.jsonl")
            for span in read_spans(path)
            if span["context"]["trace_id"] == f"0x{trace_id}"
        ],
        what="the spans of the allowed call",
    )
    names = {span["name"] for span in spans}
    assert "ztunnel outbound" in names
    assert any(name.startswith("waypoint POST /mcp/account") for name in names)
    # The waypoint keeps its upstream tunnel open (pooled), so the access log line comes at
    # close; the destination's connection metric says who arrived as soon as it opens.
    opened = cluster.wait_for(
        lambda: [
            line
            for line in metrics_text(cluster).splitlines()
            if line.startswith("istio_tcp_connections_opened_total{")
            and 'reporter="destination"' in line
            and f'source_principal="{WAYPOINT_ID}"' in line
            and 'destination_workload="account-mcp"' in line
        ],
        what="account-mcp's ztunnel to see the waypoint's identity",
    )
    assert opened


def test_tools_list_shows_only_the_allowed_tools(cluster: Cluster) -> None:
    tools = mcp(cluster, SUPPORT_POD, "transaction", "list")
    assert tools == ["get_details", "list_recent"]


def test_a_tool_not_on_the_list_is_refused_and_never_reaches_the_pod(cluster: Cluster) -> None:
    refused = mcp(
        cluster,
        SUPPORT_POD,
        "transaction",
        "flag_suspicious",
        {"txn_id": "txn-002", "reason": "prompt-injected"},
    )
    assert_refused(refused)
    denied = cluster.wait_for(
        lambda: [r for r in waypoint_log(cluster) if r.get("mcp.tool") == "flag_suspicious"],
        what="the deny line",
    )[-1]
    assert denied["decision"] == "deny"
    assert denied["http.status"] == 403
    assert denied["src.identity"] == SUPPORT_BOT
    details = mcp(cluster, SUPPORT_POD, "transaction", "get_details", {"txn_id": "txn-002"})
    assert details["data"]["flagged"] is False, "the refused call never reached transaction-mcp"


def test_an_identity_on_no_list_sees_no_tools_and_calls_nothing(cluster: Cluster) -> None:
    listed = mcp(cluster, "trustusbank-bank-vendors/currency-converter", "account", "list")
    assert listed == [], listed
    refused = mcp(
        cluster,
        "trustusbank-bank-vendors/currency-converter",
        "account",
        "get_profile",
        {"customer_id": "12345"},
    )
    assert_refused(refused)
    line = [r for r in waypoint_log(cluster) if r.get("mcp.tool") == "get_profile"][-1]
    assert (line["decision"], line["src.identity"]) == ("deny", CONVERTER)


POLICY = """\
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: test-ticket-policy
  namespace: trustusbank-platform
spec:
  targetRefs:
    - group: agentgateway.dev
      kind: AgentgatewayBackend
      name: ticket-mcp
  backend:
    mcp:
      authorization:
        action: Allow
        policy:
          matchExpressions:
            - 'mcp.tool.arguments.channel == "pager"'
            - {extra}
"""


@pytest.mark.slow
def test_policy_edits_apply_live_and_a_rule_that_errors_does_not_allow(
    cluster: Cluster, tmp_path: Path
) -> None:
    policy = tmp_path / "test-ticket-policy.yaml"
    policy.write_text(POLICY.format(extra="'source.identity.serviceAccount == \"nobody\"'"))
    assert cluster.cli("apply", "-f", str(policy)).returncode == 0
    try:
        # `mcp.tool.arguments` is not available while authorizing (as in agentgateway): the first
        # rule errors for every call, the second is false, so nothing is allowed, not even with
        # the argument the first rule asks for.
        cluster.wait_for(
            lambda: "test-ticket-policy" in waypoint_pod_log(cluster),
            what="the waypoint to load the new policy",
        )
        assert mcp(cluster, SUPPORT_POD, "ticket", "list") == []
        refused = mcp(
            cluster,
            SUPPORT_POD,
            "ticket",
            "notify_human",
            {"ticket_id": "TICK-00000000", "channel": "pager"},
        )
        assert_refused(refused)

        policy.write_text(POLICY.format(extra="'source.identity.serviceAccount == \"support-bot\"'"))
        assert cluster.cli("apply", "-f", str(policy)).returncode == 0
        cluster.wait_for(
            lambda: mcp(cluster, SUPPORT_POD, "ticket", "list") == ["create_ticket", "notify_human"] or None,
            what="the edited policy, without a restart",
        )
    finally:
        cluster.cli("delete", "-f", str(policy))


RATE_LIMIT = """\
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: test-currency-rate-limit
  namespace: trustusbank-platform
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: currency-converter-route
  traffic:
    rateLimit:
      local:
        - requests: 2
          unit: Hours
          burst: 1
"""

BURST = textwrap.dedent(
    f"""
    import httpx, json
    ping = {{"jsonrpc": "2.0", "id": 1, "method": "ping"}}
    codes = [httpx.post("{GATEWAY}/mcp/currency", json=ping).status_code for _ in range(6)]
    print(json.dumps(codes))
    """
)


def test_a_rate_limited_route_answers_429_with_the_configured_counts(
    cluster: Cluster, tmp_path: Path
) -> None:
    policy = tmp_path / "test-currency-rate-limit.yaml"
    policy.write_text(RATE_LIMIT)
    assert cluster.cli("apply", "-f", str(policy)).returncode == 0
    try:
        cluster.wait_for(
            lambda: "test-currency-rate-limit" in waypoint_pod_log(cluster), what="the rate limit to load"
        )
        result = cluster.exec_python(SUPPORT_POD, BURST)
        codes = json.loads(result.stdout.strip())
        assert [c == 429 for c in codes] == [False, False, False, True, True, True], codes
        limited = [r for r in waypoint_log(cluster) if r.get("http.status") == 429]
        assert limited[-1]["rule"] == "trustusbank-platform/currency-converter-route local rate limit"
        assert (
            "agentgateway_policy_denials_total{"
            in httpx.get(f"http://{waypoint_ip(cluster)}:15020/metrics", trust_env=False).text
        )
    finally:
        cluster.cli("delete", "-f", str(policy))


def waypoint_ip(cluster: Cluster) -> str:
    return next(p.ip for p in cluster.topology.pods if p.role == "waypoint")


L7_DENY = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: test-deny-ticket-path
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
            paths: ["/mcp/ticket*"]
"""


def test_an_istio_policy_targeting_the_waypoint_applies_its_l7_fields(
    cluster: Cluster, tmp_path: Path
) -> None:
    policy = tmp_path / "test-deny-ticket-path.yaml"
    policy.write_text(L7_DENY)
    assert cluster.cli("apply", "-f", str(policy)).returncode == 0
    try:
        assert mcp(cluster, SUPPORT_POD, "account", "list") == [
            "get_balance",
            "get_profile",
        ]
        cluster.wait_for(lambda: _denied_by_path(cluster), what="a ticket request denied at the waypoint")
    finally:
        cluster.cli("delete", "-f", str(policy))


def _denied_by_path(cluster: Cluster) -> bool:
    result = mcp(cluster, SUPPORT_POD, "ticket", "list")
    if not isinstance(result, dict) or "exception" not in result:
        return False
    lines = [r for r in waypoint_log(cluster) if r.get("http.path", "").startswith("/mcp/ticket")]
    return (
        bool(lines)
        and lines[-1]["reason"] == "explicitly denied by: trustusbank-platform/test-deny-ticket-path"
    )
