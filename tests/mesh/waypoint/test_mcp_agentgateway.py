"""The waypoint judges MCP as agentgateway v1.4.1 does, end to end over real sockets.

A real MCP server (the official SDK's `MCPServer`) sits behind the waypoint of `harness`, which
is reached over real HBONE tunnels with a caller's SVID. The backend's MCP authorization is an
allowlist; a recorder in front of the server notes every JSON-RPC method that reaches it, so a
test sees what was forwarded, not only what was answered. Upstream sources (agentgateway tag
v1.4.1, crates/agentgateway/src/mcp/):

* lists: `handler.rs` `merge_tools`, `merge_prompts`, `merge_resources`,
  `merge_resource_templates` keep an item only if `rbac.rs` `McpAuthorizationSet::validate`
  allows it as a Tool (`name`), Prompt (`name`) or Resource (`uri`, or a template's
  `uriTemplate`);
* `session.rs` `CompleteRequest`: a `ref/prompt` is authorized as the prompt
  (`authorize_prompt_request`), a `ref/resource` as the resource (`authorize_resource_request`);
* `session.rs` `GetTaskRequest`, `UpdateTaskRequest`, `CancelTaskRequest`:
  `authorize_task_request`, `ResourceType::Task` with `name` = the task id (`rbac.rs`);
* `mod.rs` `is_known_client_request_method` and `session.rs` `_ => InvalidMethod`: any other
  request method (`tasks/list`, `tasks/result` among them) is refused, never forwarded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
import pytest
from httpx2._sse import _SSEParser
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import Completion, PromptReference, ResourceTemplateReference

from tests.mesh.waypoint.harness import ALICE, DEADLINE, MANIFESTS, Waypoint, running
from tests.mesh.waypoint.test_mcp_parse import LEGACY, legacy_body, modern_body, modern_headers
from trustusbank.mesh.waypoint.proxy import FORBIDDEN

URL = "http://wp.shop:8080/mcp"
METHOD_NOT_FOUND = -32601  # JSON-RPC 2.0

BANK = """\
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: bank-mcp, namespace: shop}
spec:
  mcp:
    targets:
      - name: bank
        static: {host: bank.shop.svc.cluster.local, port: 8000, path: /mcp, protocol: StreamableHTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bank-mcp, namespace: shop}
spec:
  parentRefs: [{name: wp}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /mcp}}]
      backendRefs: [{group: agentgateway.dev, kind: AgentgatewayBackend, name: bank-mcp}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: bank-mcp-allowlist, namespace: shop}
spec:
  targetRefs: [{group: agentgateway.dev, kind: AgentgatewayBackend, name: bank-mcp}]
  backend:
    mcp:
      authorization:
        policy:
          matchExpressions:
            - 'mcp.tool.name == "get_balance"'
            - 'mcp.prompt.name == "summary"'
            - 'mcp.resource.name == "bank://public/rates"'
            - 'mcp.resource.name == "bank://customers/{customer_id}"'
            - 'mcp.task.name == "task-ok" && mcp.task.target == "bank"'
"""


def build_server() -> MCPServer:
    """Two of everything a list can hold: one the allowlist admits, one it does not."""
    server = MCPServer("bank")

    @server.tool()
    def get_balance(customer_id: str) -> str:
        return customer_id

    @server.tool()
    def secret_tool() -> str:
        return "secret"

    @server.prompt()
    def summary(customer_id: str) -> str:
        return customer_id

    @server.prompt()
    def secret_prompt() -> str:
        return "secret"

    @server.resource("bank://public/rates")
    def rates() -> str:
        return "rates"

    @server.resource("bank://secret/keys")
    def keys() -> str:
        return "keys"

    @server.resource("bank://customers/{customer_id}")
    def customer(customer_id: str) -> str:
        return customer_id

    @server.resource("bank://secret/{key_id}")
    def secret_key(key_id: str) -> str:
        return key_id

    @server.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference, argument: Any, context: Any
    ) -> Completion:
        return Completion(values=["12345"])

    return server


@dataclass
class Recorder:
    """In front of the MCP server: the JSON-RPC methods that reached it.

    A `subscriptions/listen` it answers itself with a stream that ends at once (the SDK's stays
    open until the server shuts down), so a test can read the whole exchange.
    """

    app: Any
    methods: list[str] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received: list[dict[str, Any]] = []
        body = b""
        while True:
            message = await receive()
            received.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if body:
            request = json.loads(body)
            self.methods.append(request.get("method", "-"))
            if request.get("method") == "subscriptions/listen":
                ended = {"jsonrpc": "2.0", "id": request["id"], "result": {}}
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")],
                    }
                )
                await send({"type": "http.response.body", "body": f"data: {json.dumps(ended)}\n\n".encode()})
                return

        async def replay() -> dict[str, Any]:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)


@dataclass
class Bank:
    waypoint: Waypoint
    recorder: Recorder
    pool: httpcore.AsyncConnectionPool


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[Bank]:
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    recorder = Recorder(build_server().streamable_http_app(transport_security=security))
    async with running(tmp_path, manifests=MANIFESTS + BANK, backend=recorder) as waypoint:
        pool, _ = waypoint.client(ALICE)
        yield Bank(waypoint, recorder, pool)


async def post(pool: httpcore.AsyncConnectionPool, headers: dict[str, str], body: bytes) -> httpcore.Response:
    async with asyncio.timeout(DEADLINE):
        return await pool.request("POST", URL, headers=list(headers.items()), content=body)


def messages(response: httpcore.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages a client reads from the answer (JSON, or SSE `message` events)."""
    content_type = dict(response.headers).get(b"content-type", b"").decode()
    if content_type.startswith("application/json"):
        return [json.loads(response.content)]
    parser = _SSEParser()
    events = [*parser.decode(response.content.decode()), *parser.flush()]
    return [json.loads(e.data) for e in events if e.event == "message" and e.data]


async def legacy_session(pool: httpcore.AsyncConnectionPool) -> dict[str, str]:
    """A 2025-11-25 session (initialize, initialized): its answers come as SSE."""
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    response = await post(pool, headers, legacy_body("initialize", params, request_id=0))
    assert response.status == 200, response.content
    session = dict(response.headers)[b"mcp-session-id"].decode()
    headers |= {"mcp-session-id": session, "mcp-protocol-version": LEGACY}
    assert (await post(pool, headers, legacy_body("notifications/initialized", None, None))).status == 202
    return headers


# --- 1. every list is filtered ------------------------------------------------------------------

LISTS = [
    # (method, result member, item name member, kept, dropped): agentgateway mcp/handler.rs merge_*
    ("tools/list", "tools", "name", {"get_balance"}, {"secret_tool"}),
    ("prompts/list", "prompts", "name", {"summary"}, {"secret_prompt"}),
    ("resources/list", "resources", "uri", {"bank://public/rates"}, {"bank://secret/keys"}),
    (
        "resources/templates/list",
        "resourceTemplates",
        "uriTemplate",
        {"bank://customers/{customer_id}"},
        {"bank://secret/{key_id}"},
    ),
]


@pytest.mark.parametrize("era", ["modern-json", "legacy-sse"])
@pytest.mark.parametrize(
    ("method", "member", "name", "kept", "dropped"), LISTS, ids=[row[0] for row in LISTS]
)
async def test_every_list_answer_is_filtered(
    bank: Bank, era: str, method: str, member: str, name: str, kept: set[str], dropped: set[str]
) -> None:
    if era == "modern-json":
        response = await post(bank.pool, modern_headers(method), modern_body(method, {}, request_id=5))
        expected_type = b"application/json"
    else:
        headers = await legacy_session(bank.pool)
        response = await post(bank.pool, headers, legacy_body(method, {}, request_id=5))
        expected_type = b"text/event-stream"
    assert response.status == 200, response.content
    assert dict(response.headers)[b"content-type"].startswith(expected_type)
    [answer] = [m for m in messages(response) if m.get("id") == 5]
    assert {item[name] for item in answer["result"][member]} == kept
    assert bank.recorder.methods[-1] == method  # the server answered the whole list; the waypoint cut it
    assert not dropped & {item[name] for item in answer["result"][member]}


# --- 2. completion/complete and tasks are judged as agentgateway judges them ---------------------

JUDGED = [
    # agentgateway mcp/session.rs CompleteRequest: judged as the prompt or resource it completes
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "summary"}}, True),
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "secret_prompt"}}, False),
    ("completion/complete", {"ref": {"type": "ref/resource", "uri": "bank://customers/{customer_id}"}}, True),
    ("completion/complete", {"ref": {"type": "ref/resource", "uri": "bank://secret/{key_id}"}}, False),
    # mcp/session.rs authorize_task_request: mcp.task.name is the task id, target the MCP target
    ("tasks/get", {"taskId": "task-ok"}, True),
    ("tasks/get", {"taskId": "task-other"}, False),
    ("tasks/update", {"taskId": "task-other"}, False),
    ("tasks/cancel", {"taskId": "task-ok"}, True),
    ("tasks/cancel", {"taskId": "task-other"}, False),
]


@pytest.mark.parametrize(
    ("method", "params", "allowed"),
    JUDGED,
    ids=[f"{m}-{json.dumps(p, sort_keys=True)}-{'allow' if a else 'deny'}" for m, p, a in JUDGED],
)
async def test_completion_and_tasks_are_judged_on_what_they_name(
    bank: Bank, method: str, params: dict[str, Any], allowed: bool
) -> None:
    argument = {"argument": {"name": "customer_id", "value": "1"}} if method == "completion/complete" else {}
    body = modern_body(method, params | argument, request_id=9)
    response = await post(bank.pool, modern_headers(method), body)
    [line] = bank.waypoint.lines()
    assert line["mcp.method"] == method
    if allowed:
        assert bank.recorder.methods == [method]
        assert line["decision"] == "allow"
        assert line["rule"] is not None
        if method == "completion/complete":
            assert response.status == 200
            assert messages(response)[0]["result"]["completion"]["values"] == ["12345"]
    else:
        assert bank.recorder.methods == []
        assert response.status == 403
        assert json.loads(response.content)["error"]["code"] == FORBIDDEN
        assert json.loads(response.content)["id"] == 9
        assert line["decision"] == "deny"
        assert line["reason"].startswith("mcp authorization:")


MALFORMED = [
    ("completion/complete", {"ref": {"type": "ref/other", "name": "summary"}}),
    ("completion/complete", {"ref": {"type": "ref/prompt"}}),
    ("completion/complete", {"ref": "summary"}),
    ("completion/complete", {}),
    ("tasks/get", {}),
    ("tasks/cancel", {"taskId": 7}),
]


@pytest.mark.parametrize(("method", "params"), MALFORMED, ids=[f"{m}-{json.dumps(p)}" for m, p in MALFORMED])
async def test_a_request_naming_nothing_judgeable_is_refused(
    bank: Bank, method: str, params: dict[str, Any]
) -> None:
    """agentgateway refuses other references (`InvalidMethod`) and unparseable params (`InvalidRequest`)."""
    response = await post(bank.pool, modern_headers(method), modern_body(method, params, request_id=3))
    assert response.status == 400
    assert bank.recorder.methods == []
    [line] = bank.waypoint.lines()
    assert line["decision"] == "deny"
    assert line["reason"].startswith("mcp refused:")


# --- 3. a method agentgateway does not know is refused --------------------------------------------

UNKNOWN = ["tasks/list", "tasks/result", "bank/drain", "tools/List", "sampling/createMessage"]


@pytest.mark.parametrize("method", UNKNOWN)
async def test_an_unknown_method_is_refused_and_logged(bank: Bank, method: str) -> None:
    """agentgateway mcp/mod.rs is_known_client_request_method; session.rs `_ => InvalidMethod`."""
    response = await post(bank.pool, modern_headers(method), modern_body(method, {}, request_id="u1"))
    assert response.status == 400
    error = json.loads(response.content)
    assert error["id"] == "u1"
    assert error["error"] == {"code": METHOD_NOT_FOUND, "message": f"unsupported method: {method}"}
    assert bank.recorder.methods == []
    [line] = bank.waypoint.lines()
    assert line["decision"] == "deny"
    assert (
        line["reason"]
        == f"mcp refused: unsupported method {method!r} (agentgateway serves no such MCP request)"
    )


async def test_known_unjudged_methods_and_notifications_still_pass(bank: Bank) -> None:
    """ping is known and unjudged; a notification is not a request, whatever its method."""
    headers = await legacy_session(bank.pool)
    response = await post(bank.pool, headers, legacy_body("ping", {}, request_id=1))
    assert response.status == 200
    assert messages(response)[0]["result"] == {}
    note = legacy_body("notifications/bank-custom", None, None)
    assert (await post(bank.pool, headers, note)).status == 202
    assert bank.recorder.methods == [
        "initialize",
        "notifications/initialized",
        "ping",
        "notifications/bank-custom",
    ]
    assert {line["decision"] for line in bank.waypoint.lines()} == {"allow"}


# --- subscriptions/listen: each subscribed resource is judged ------------------------------------

LISTEN = [
    # agentgateway mcp/session.rs SubscriptionsListenRequest: authorize_resource_request per URI
    (["bank://public/rates"], True),
    (["bank://public/rates", "bank://secret/keys"], False),
    (["bank://secret/keys"], False),
]


@pytest.mark.parametrize(("uris", "allowed"), LISTEN, ids=["allowed", "one-of-two-denied", "denied"])
async def test_subscriptions_listen_is_judged_per_resource(
    bank: Bank, uris: list[str], allowed: bool
) -> None:
    method = "subscriptions/listen"
    body = modern_body(method, {"notifications": {"resourceSubscriptions": uris}}, request_id=4)
    response = await post(bank.pool, modern_headers(method), body)
    [line] = bank.waypoint.lines()
    if allowed:
        assert response.status == 200
        assert messages(response) == [{"jsonrpc": "2.0", "id": 4, "result": {}}]
        assert bank.recorder.methods == [method]
        assert line["decision"] == "allow"
    else:
        assert response.status == 403
        assert json.loads(response.content)["error"]["code"] == FORBIDDEN
        assert "bank://secret/keys" in json.loads(response.content)["error"]["message"]
        assert bank.recorder.methods == []
        assert line["decision"] == "deny"
