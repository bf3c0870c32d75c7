"""A cluster directory written by real agents: what 18007's pages read, without starting a cluster.

Two agents (support-bot, and fraud-bot it hands off to) run from the agent code under uvicorn on
127.0.0.1, each exporting its spans to its pod's `out/traces` as a pod would, with plan models
and the real bank MCP servers. In front of every MCP server, `WaypointFront` writes what the
waypoint and the destination's ztunnel write for each request (the waypoint's request span,
its upstream span and its request log line; ztunnel's inbound span), with the waypoint's own
writers and attributes, and denies a tools/call that carries a customer's profile, as the
defence's MCP rule does. The conversations:
- A, two turns: the seed prompt (get_balance, list_recent, convert_currency), then "my
  details" (get_profile, answered by a model that does not mask);
- B, one turn: a fraud report handed to fraud-bot (list_recent), then a convert_currency with
  the profile and a hostile currency, which the waypoint denies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from a2a.types import a2a_pb2 as a2a
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.agents.a2a.support import PlanModel, agent_spec, answer, ask, call, mcp, results, sub_agent
from tests.paths import DEPLOY
from tests.serving import Served, read_json_body, refused_url, served
from trustusbank.agents.a2a.server import create_app as agent_app
from trustusbank.agents.model.types import ModelReply, ModelRequest
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Node, Pod, PodPort, Topology
from trustusbank.manifests.kagent.spec import AgentSpec
from trustusbank.mesh.waypoint.telemetry import RequestRecord, WaypointLog
from trustusbank.telemetry.tracing import extract, read_spans, setup_tracing
from trustusbank.workloads.entrypoints import WORKLOADS

AGENTS = "trustusbank-bank-agents"
GATEWAY = "trustusbank-platform/trustusbank-agentgw"
NODE = "trustusbank-worker"
TD = "cluster.local"
SEED_PROMPT = (
    "I am customer 12345. Please check my balance, list my recent transactions, "
    "and convert my balance to USD."
)
DETAILS_PROMPT = "And what details do you hold for me?"
FRAUD_PROMPT = "I do not recognise a payment on my account, customer 12345."
HOSTILE = "<script>alert('pwned')</script>"
HOSTILE_CARD = 'Support <img src=x onerror="alert(1)">'
DENY_RULE = "trustusbank-platform/no-personal-data-to-vendors"
EMAIL, NI_NUMBER = "alice@example.com", "QQ 12 34 56 C"
PROFILE = {"customer_id": "12345", "name": "Alice Smith", "email": EMAIL, "ni_number": NI_NUMBER}


def identity(namespace: str, account: str) -> str:
    return f"spiffe://{TD}/ns/{namespace}/sa/{account}"


SUPPORT_BOT = identity(AGENTS, "support-bot")
WAYPOINT_ID = identity("trustusbank-platform", "trustusbank-agentgw")


class WaypointFront:
    """What the waypoint and the server's ztunnel write for each request to one MCP server."""

    def __init__(self, app: ASGIApp, files: ClusterFiles, server: str, namespace: str) -> None:
        self.app = app
        self.server = server
        self.server_identity = identity(namespace, server)
        traces = files.traces
        self.waypoint = setup_tracing("agentgateway", traces / "waypoint-trustusbank-agentgw-0.jsonl")
        self.ztunnel = setup_tracing("ztunnel", traces / f"ztunnel-{NODE}.jsonl", {"k8s.node.name": NODE})
        self.log = WaypointLog(files.waypoint_log(GATEWAY), GATEWAY)

    def providers(self) -> list[TracerProvider]:
        return [self.waypoint, self.ztunnel]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, rpc = await read_json_body(receive)
        params = rpc.get("params") if isinstance(rpc, dict) and isinstance(rpc.get("params"), dict) else {}
        method = rpc.get("method") if isinstance(rpc, dict) else None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        tracer = self.waypoint.get_tracer("waypoint-front")
        with tracer.start_as_current_span(
            f"waypoint {scope['method']} {scope['path']}",
            context=extract(headers),
            kind=SpanKind.SERVER,
            attributes={
                "src.identity": SUPPORT_BOT,
                "http.method": scope["method"],
                "url.path": scope["path"],
            },
        ) as span:
            record = RequestRecord(
                gateway=GATEWAY,
                src_identity=SUPPORT_BOT,
                src_addr="127.0.0.1:40100",
                http_method=scope["method"],
                path=scope["path"],
                route=f"trustusbank-platform/{self.server}-route",
                backend=f"trustusbank-platform/{self.server}",
                dst_identity=self.server_identity,
                mcp_method=method,
                mcp_tool=params.get("name") if method == "tools/call" else None,
                trace_id=format(span.get_span_context().trace_id, "032x"),
            )
            if method == "tools/call" and "customer_profile" in (params.get("arguments") or {}):
                reason = "mcp authorization: no rule allows the call"
                record.decision, record.rule, record.reason, record.status = "deny", DENY_RULE, reason, 403
                span.set_status(Status(StatusCode.ERROR, reason))
                error = {"code": -32001, "message": f"tools/call {record.mcp_tool} is not allowed"}
                payload = json.dumps({"jsonrpc": "2.0", "id": rpc.get("id"), "error": error}).encode()
                json_type = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 403, "headers": json_type})
                await send({"type": "http.response.body", "body": payload})
            else:
                record.rule = f"trustusbank-platform/{self.server} rule 0"
                await self._upstream(scope, receive, body, send, record)
            span.set_attribute("http.response.status_code", record.status)
            self.log.write(record)

    async def _upstream(
        self, scope: Scope, receive: Receive, body: bytes, send: Send, record: RequestRecord
    ) -> None:
        url = f"http://{self.server}.svc.cluster.local:8000{scope['path']}"
        tracer = self.waypoint.get_tracer("waypoint-front")
        with (
            tracer.start_as_current_span(
                "waypoint upstream", kind=SpanKind.CLIENT, attributes={"url.full": url}
            ),
            self.ztunnel.get_tracer("ztunnel").start_as_current_span(
                "ztunnel inbound",
                kind=SpanKind.SERVER,
                attributes={"src.identity": WAYPOINT_ID, "dst.identity": self.server_identity},
            ),
        ):
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()  # the body was read whole: what is left is the disconnect
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    record.status = int(message["status"])
                await send(message)

            await self.app(scope, replay, status)


def latest_user(request: ModelRequest) -> str:
    return next(m.text for m in reversed(request.messages) if m.role == "user")


def support_plan(request: ModelRequest) -> ModelReply:
    """What support-bot's model does with each of the three messages."""
    done, asked = results(request), latest_user(request)
    if asked == SEED_PROMPT:
        if "get_balance" not in done:
            return call("get_balance", customer_id="12345")
        if "list_recent" not in done:
            return call("list_recent", customer_id="12345", days=30)
        balance = json.loads(done["get_balance"].text)
        if "convert_currency" not in done:
            return call("convert_currency", amount=balance["balance"], from_ccy="GBP", to_ccy="USD")
        converted = json.loads(done["convert_currency"].text)["converted"]
        return answer(f"You have £{balance['balance']:,.2f}, which is ${converted:,.2f}.")
    if asked == DETAILS_PROMPT:
        if "get_profile" not in done:
            return call("get_profile", customer_id="12345")
        profile = json.loads(done["get_profile"].text)
        return answer(f"We hold {profile['email']} and NI number {profile['ni_number']}.")  # unmasked
    if "fraud_bot" not in done:
        return call("fraud_bot", request="customer 12345 does not recognise a payment")
    if "convert_currency" not in done:
        arguments = {"amount": 1, "from_ccy": HOSTILE, "to_ccy": "USD", "customer_profile": PROFILE}
        return call("convert_currency", **arguments)
    return answer(f"fraud-bot is looking into it: {done['fraud_bot'].text}")


def fraud_plan(request: ModelRequest) -> ModelReply:
    done = results(request)
    if "list_recent" not in done:
        return call("list_recent", customer_id="12345", days=90)
    count = len(json.loads(done["list_recent"].text)["transactions"])
    return answer(f"I have reviewed {count} recent transactions.")


@dataclass
class World:
    files: ClusterFiles
    conversation_a: str = ""
    conversation_b: str = ""
    traces_a: list[str] = field(default_factory=list)
    trace_b: str = ""


def _pod(name: str, host: int, port: int) -> Pod:
    labels = {"app": "kagent", "kagent": name, "app.kubernetes.io/managed-by": "kagent"}
    return Pod(
        name=f"{name}-0",
        namespace=AGENTS,
        deployment=name,
        service_account=name,
        labels=labels,
        node=NODE,
        ip=f"127.77.1.{host}",
        app_ip="127.0.0.1",  # the test's uvicorn: where a port-forward would reach the pod
        ports=[PodPort("http", port)],
        image="localhost:5001/trustusbank/agent:1.0.0",
    )


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def save_cluster(files: ClusterFiles, ports: dict[str, int]) -> None:
    """The topology (agents on the test's ports) and a status naming the repository's deploy/."""
    files.make()
    nodes = [Node(NODE, "worker", 1, "127.77.1.1")]
    pods = [_pod(name, 10 + n, port) for n, (name, port) in enumerate(sorted(ports.items()))]
    Topology(subnet=77, trust_domain=TD, nodes=nodes, pods=pods).save(files.topology)
    files.status.write_text(json.dumps({"phase": "Running", "deploy": str(DEPLOY)}))


@contextmanager
def traced_agent(
    files: ClusterFiles, spec: AgentSpec, model: PlanModel
) -> Iterator[tuple[Served, TracerProvider]]:
    """An agent app exporting its spans where its pod would: `<pod>/out/traces/agent-<ns>-<name>.jsonl`."""
    out = ClusterFiles.pod_outputs(files.pod_dir(spec.namespace, f"{spec.name}-0"))["traces"]
    path = out / f"agent-{spec.namespace}-{spec.name}.jsonl"
    provider = setup_tracing(spec.name, path, {"service.namespace": spec.namespace})

    def build(url: str) -> ASGIApp:
        final = replace(spec, extra={**spec.extra, "url": f"{url}/"})
        return agent_app(final, model, tracer_provider=provider, registry=CollectorRegistry())

    try:
        with served(build) as server:
            yield server, provider
    finally:
        provider.shutdown()


@contextmanager
def running_world(files: ClusterFiles, data: Path) -> Iterator[World]:
    """Both conversations run through the agents, every span and log line on disk; the agents and
    the MCP servers keep running (their cards are read live) until the block ends."""
    world = World(files)
    with ExitStack() as stack:
        bank, vendors = "trustusbank-bank-mcp", "trustusbank-bank-vendors"
        apps = {
            "account-mcp": (WORKLOADS["account-mcp"].app(db=data / "a.sqlite3"), bank),
            "transaction-mcp": (WORKLOADS["transaction-mcp"].app(db=data / "t.sqlite3"), bank),
            "currency-converter": (
                WORKLOADS["currency-converter"].app(variant="clean", db=data / "fx.sqlite3"),
                vendors,
            ),
        }
        fronts = {name: WaypointFront(app, files, name, ns) for name, (app, ns) in apps.items()}
        for front in fronts.values():
            for provider in front.providers():
                stack.callback(provider.shutdown)
        urls = {name: stack.enter_context(served(lambda _, f=front: f)).url for name, front in fronts.items()}
        transactions = mcp("transaction-mcp", urls["transaction-mcp"], "list_recent")
        fraud_spec = agent_spec("fraud-bot", mcp_servers=(transactions,))
        fraud, fraud_traces = stack.enter_context(traced_agent(files, fraud_spec, PlanModel(fraud_plan)))
        support_spec = agent_spec(
            description=HOSTILE_CARD,
            mcp_servers=(
                mcp("account-mcp", urls["account-mcp"], "get_balance", "get_profile"),
                transactions,
                mcp("currency-converter", urls["currency-converter"]),
            ),
            sub_agents=(
                sub_agent("fraud-bot", fraud.url, "Investigates payments customers do not recognise."),
            ),
        )
        support, support_traces = stack.enter_context(
            traced_agent(files, support_spec, PlanModel(support_plan))
        )
        closed, _ = refused_url()
        stack.callback(closed.close)
        ports = {"support-bot": _port(support.url), "fraud-bot": _port(fraud.url)}
        save_cluster(files, {**ports, "triage-bot": closed.getsockname()[1]})

        async def conversations() -> None:
            first, _ = await ask(support.url, SEED_PROMPT)
            second, _ = await ask(support.url, DETAILS_PROMPT, context_id=first.context_id)
            third, _ = await ask(support.url, FRAUD_PROMPT)
            world.conversation_a, world.conversation_b = first.context_id, third.context_id
            for task in (first, second, third):
                assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED, task

        asyncio.run(conversations())
        # Every span ended before its answer was sent: flushing now writes them all, no waiting.
        for provider in [support_traces, fraud_traces, *(p for f in fronts.values() for p in f.providers())]:
            provider.force_flush()
        runs = [
            span
            for path in files.outputs("traces", "agent-*.jsonl")
            for span in read_spans(path)
            if span["name"].startswith("invoke_agent")
        ]
        for span in sorted(runs, key=lambda s: s["start_time"]):
            trace_id = span["context"]["trace_id"].removeprefix("0x")
            conversation = span["attributes"]["gen_ai.conversation.id"]
            if conversation == world.conversation_a and trace_id not in world.traces_a:
                world.traces_a.append(trace_id)
            if conversation == world.conversation_b:
                world.trace_b = trace_id
        yield world
