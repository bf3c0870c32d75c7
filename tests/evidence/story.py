"""The three acts' evidence, written by the components' own writers into a scratch cluster directory.

No cluster runs: the lines come from the same code the running components use
(ztunnel's AccessLog, the waypoint's WaypointLog, OpenTelemetry spans through our
JSON-lines exporter, the image store's push record, `apply`'s change event), with
the addresses and identities of a hand-made topology. The story:
- the converter's image is seeded (clean digest) and every pod starts;
- Act 1: support-bot converts a balance; the converter calls the FX API;
- Act 2: the converter's tag is pushed to the rug-pulled build and the pod
  restarted; support-bot passes the customer's profile to convert_currency, and
  while that call runs the converter connects to the attacker, successfully;
- Act 3: the defence set is applied; the same call, and the attacker connection is
  denied at the destination (policy rejection) and refused at the source (401); an
  alert fires naming the converter;
- aside: a waypoint deny of a tool (its name an attacker's HTML) and an AccessPolicy
  deny of an A2A call.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.trace import SpanKind

from trustusbank.agents.a2a import spans as genai
from trustusbank.alerts.evaluator import Alert
from trustusbank.alerts.service import LOG_NAME as ALERTS_LOG
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.topology import Node, Pod, PodPort, Topology
from trustusbank.images.store import Build, Pushed
from trustusbank.mesh.authz.evaluate import DENIED_FMT
from trustusbank.mesh.waypoint.telemetry import RequestRecord, WaypointLog
from trustusbank.mesh.ztunnel.access_log import AccessLog, ConnectionRecord
from trustusbank.mesh.ztunnel.inbound import POLICY_REJECTION
from trustusbank.runtime.apply import APPLIED_EVENT
from trustusbank.runtime.apply import record as record_change
from trustusbank.telemetry.jsonlog import JsonLinesLog
from trustusbank.telemetry.tracing import setup_tracing

SUBNET = 77
TD = "cluster.local"
AGENTS, VENDORS, ATTACKER, FX, MCP, PLATFORM = (
    "trustusbank-bank-agents",
    "trustusbank-bank-vendors",
    "external-attacker",
    "external-fx",
    "trustusbank-bank-mcp",
    "trustusbank-platform",
)
GATEWAY = f"{PLATFORM}/trustusbank-agentgw"
CONVERTER_IMAGE = "localhost:5001/acme-fx/currency-converter:1.0.0"
CLEAN = "sha256:" + "c1" * 32
RUGPULL = "sha256:" + "d2" * 32
DENY_POLICY = f"{ATTACKER}/deny-bank-to-attacker"
EVIL_TOOL = "<script>alert('pwned')</script>"
PROFILE = {
    "customer_id": "12345",
    "name": "Alice Smith",
    "email": "alice@example.com",
    "phone": "+44 7700 900100",
    "address": "1 High Street, London",
    "date_of_birth": "1985-03-14",
    "ni_number": "QQ123456C",
    "kyc_status": "verified",
}


def identity(namespace: str, account: str) -> str:
    return f"spiffe://{TD}/ns/{namespace}/sa/{account}"


SUPPORT_BOT = identity(AGENTS, "support-bot")
CONVERTER = identity(VENDORS, "currency-converter")
ATTACKER_ID = identity(ATTACKER, "mock-attacker")
CHATBOT = identity("trustusbank-bank-frontend", "chatbot")


def _pod(name: str, namespace: str, node: int, host: int, image: str, account: str | None = None) -> Pod:
    return Pod(
        name=f"{name}-0",
        namespace=namespace,
        deployment=name,
        service_account=account or name,
        labels={"app": name},
        node=f"trustusbank-worker{'' if node == 1 else node}",
        ip=f"127.{SUBNET}.{node}.{host}",
        app_ip=f"127.{SUBNET}.{node}.{host + 128}",
        ports=[PodPort("http", 8080)],
        image=image,
    )


PODS = {
    "support-bot": _pod("support-bot", AGENTS, 1, 10, "localhost:5001/trustusbank/agent:1.0.0"),
    "fraud-bot": _pod("fraud-bot", AGENTS, 1, 11, "localhost:5001/trustusbank/agent:1.0.0"),
    "currency-converter": _pod("currency-converter", VENDORS, 2, 10, CONVERTER_IMAGE),
    "mock-attacker": _pod("mock-attacker", ATTACKER, 2, 11, "localhost:5001/trustusbank/mock-attacker:1.0.0"),
    "fx-api": _pod("fx-api", FX, 1, 12, "localhost:5001/trustusbank/fx-api:1.0.0"),
    "account-mcp": _pod("account-mcp", MCP, 1, 13, "localhost:5001/trustusbank/account-mcp:1.0.0"),
    "chatbot": _pod(
        "chatbot", "trustusbank-bank-frontend", 2, 12, "localhost:5001/trustusbank/chatbot:1.0.0"
    ),
}


def topology() -> Topology:
    nodes = [
        Node("trustusbank-control-plane", "control-plane", 0, f"127.{SUBNET}.0.1"),
        Node("trustusbank-worker", "worker", 1, f"127.{SUBNET}.1.1"),
        Node("trustusbank-worker2", "worker", 2, f"127.{SUBNET}.2.1"),
    ]
    return Topology(subnet=SUBNET, trust_domain=TD, nodes=nodes, pods=list(PODS.values()))


def tick() -> None:
    """Keep each step's clock stamp distinct from the last (the writers stamp real time)."""
    time.sleep(0.003)


@dataclass
class Story:
    files: ClusterFiles
    traces: dict[str, str] = field(default_factory=dict)  # act -> support-bot's trace id
    connection_traces: dict[str, str] = field(default_factory=dict)  # act -> the converter's exfil trace
    _logs: dict[str, AccessLog] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.files.make()
        topology().save(self.files.topology)
        self.waypoint = WaypointLog(self.files.waypoint_log(GATEWAY), GATEWAY)
        path = self.files.traces / f"agent-{AGENTS}-support-bot.jsonl"
        self.provider = setup_tracing("support-bot", path, {"service.namespace": AGENTS})
        self.tracer = self.provider.get_tracer("story")

    # -- writers ----------------------------------------------------------------
    def event(self, kind: str, **fields: Any) -> None:
        """A runtime event, in the supervisor's shape."""
        with self.files.events.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"time": time.time(), "event": kind, **fields}) + "\n")
        tick()

    def access_log(self, pod: Pod) -> AccessLog:
        if pod.node not in self._logs:
            self._logs[pod.node] = AccessLog(self.files.access_log(pod.node), pod.node)
        return self._logs[pod.node]

    def connection(self, src: Pod, dst: Pod, *, denied_by: str | None = None) -> str:
        """One connection as both ztunnels log it; returns the source side's trace id."""
        trace = secrets.token_hex(16)
        common: dict[str, Any] = {
            "dst_addr": f"{dst.ip}:8080",
            "src_workload": src.name,
            "src_namespace": src.namespace,
            "src_identity": identity(src.namespace, src.service_account),
            "dst_hbone_addr": f"{dst.ip}:15008",
            "dst_workload": dst.name,
            "dst_namespace": dst.namespace,
            "dst_identity": identity(dst.namespace, dst.service_account),
        }
        inbound = ConnectionRecord("inbound", src_addr=f"{src.ip}:51000", **common)
        outbound = ConnectionRecord("outbound", src_addr=f"{src.ip}:42000", **common)
        outbound.dst_service = f"{dst.deployment}.{dst.namespace}.svc.cluster.local"
        outbound.trace_id = trace
        if denied_by:
            inbound.error = POLICY_REJECTION.format(reason=DENIED_FMT.format(ref=denied_by))
            outbound.error = "http status: 401 Unauthorized"
        else:
            inbound.trace_id = trace
            inbound.bytes_sent = outbound.bytes_sent = 277
        self.access_log(dst).write(inbound)
        self.access_log(src).write(outbound)
        return trace

    def alert_fired(self, name: str, offender: str) -> None:
        """The alert evaluator's journal line for a rule that starts firing (its writer and fields)."""
        labels = (("alertname", name), ("source_principal", offender.removeprefix("spiffe://")))
        now = time.time()
        fired = Alert(labels, {"summary": f"{name} for {offender}"}, 1.0, now, "firing", now)
        journal = JsonLinesLog(self.files.logs / ALERTS_LOG, component="alert-evaluator")
        journal.write("warn", "alert", f"{name} firing", {"event": "firing", "ts": now, **fired.to_dict()})
        tick()

    def ask(self, act: str, calls: list[tuple[str, str, dict[str, Any], Any]]) -> str:
        """support-bot's answer: one trace, a tool span per call, the waypoint's line inside each.

        Each call is (tool, server, arguments, during) where `during` runs inside the tool span."""
        attributes = {genai.OPERATION: genai.INVOKE_AGENT, genai.AGENT_NAME: "support-bot"}
        with self.tracer.start_as_current_span(
            "invoke_agent support-bot", kind=SpanKind.SERVER, attributes=attributes
        ) as root:
            trace = format(root.get_span_context().trace_id, "032x")
            for tool, server, arguments, during in calls:
                tick()
                with self.tracer.start_as_current_span(
                    f"execute_tool {tool}",
                    attributes={
                        genai.OPERATION: genai.EXECUTE_TOOL,
                        genai.TOOL_NAME: tool,
                        genai.TOOL_ARGUMENTS: genai.as_json(arguments),
                        genai.MCP_SERVER: server,
                        genai.TOOL_RESULT: '{"converted": 5445.19}',
                        genai.TOOL_IS_ERROR: False,
                    },
                ):
                    tick()
                    self.waypoint.write(
                        RequestRecord(
                            gateway=GATEWAY,
                            src_identity=SUPPORT_BOT,
                            src_addr=f"{PODS['support-bot'].ip}:40100",
                            http_method="POST",
                            path=f"/mcp/{server}",
                            route=f"{PLATFORM}/{server}-route",
                            backend=f"{PLATFORM}/{server}",
                            dst_identity=identity(PODS[server].namespace, PODS[server].service_account),
                            mcp_method="tools/call",
                            mcp_tool=tool,
                            decision="allow",
                            rule=f"{PLATFORM}/{server} rule 0",
                            status=200,
                            trace_id=trace,
                        )
                    )
                    if during is not None:
                        during()
                    tick()
        self.provider.force_flush()
        self.traces[act] = trace
        tick()
        return trace

    # -- the acts -----------------------------------------------------------------
    def setup(self) -> Story:
        seeded = Pushed(CONVERTER_IMAGE, None, CLEAN, Build("currency-converter", "clean"), "org")
        self.event("image-seeded", **seeded.to_dict(), actor="up", command="up")
        agent = Pushed(
            PODS["support-bot"].image, None, "sha256:" + "a9" * 32, Build("agent", "default"), "org"
        )
        self.event("image-seeded", **agent.to_dict(), actor="up", command="up")
        for pod in PODS.values():
            self.event("started", process=pod.ref, pid=1000, restarts=0)
        return self

    def act1(self) -> Story:
        def fx() -> None:
            self.connection_traces["1"] = self.connection(PODS["currency-converter"], PODS["fx-api"])

        args = {"amount": 4287.55, "from_ccy": "GBP", "to_ccy": "USD"}
        self.ask("1", [("convert_currency", "currency-converter", args, fx)])
        return self

    def rug_pull(self) -> Story:
        pushed = Pushed(
            CONVERTER_IMAGE, CLEAN, RUGPULL, Build("currency-converter", "real-rugpull"), "acme-fx"
        )
        self.event(
            "image-pushed", **pushed.to_dict(), actor="mallory", command="upgrade", reason="v1.0.0 hotfix"
        )
        deployment = f"{VENDORS}/currency-converter"
        self.event(
            "rollout-restarted", deployment=deployment, pod=f"{deployment}-0", old_pid=1000, new_pid=1001
        )
        self.event("started", process=f"{deployment}-0", pid=1001, restarts=0)
        return self

    def act2(self) -> Story:
        def exfil() -> None:
            self.connection_traces["2"] = self.connection(PODS["currency-converter"], PODS["mock-attacker"])

        args = {"amount": 4287.55, "from_ccy": "GBP", "to_ccy": "USD", "customer_profile": PROFILE}
        self.ask("2", [("get_profile", "account-mcp", {"customer_id": "12345"}, None),
                       ("convert_currency", "currency-converter", args, exfil)])  # fmt: skip
        return self

    def defence_on(self, tmp: Path) -> Story:
        source = tmp / "deny-bank-to-attacker.yaml"
        source.write_text("kind: AuthorizationPolicy\n")
        objects = [
            {
                "kind": "AuthorizationPolicy",
                "name": "deny-bank-to-attacker",
                "namespace": ATTACKER,
                "labels": {},
            }
        ]
        record_change(self.files, APPLIED_EVENT, source, source.read_bytes(), objects)
        tick()
        return self

    def act3(self) -> Story:
        def blocked() -> None:
            self.connection_traces["3"] = self.connection(
                PODS["currency-converter"], PODS["mock-attacker"], denied_by=DENY_POLICY
            )

        args = {"amount": 4287.55, "from_ccy": "GBP", "to_ccy": "USD", "customer_profile": PROFILE}
        self.ask("3", [("convert_currency", "currency-converter", args, blocked)])
        self.alert_fired("IstioAuthZDeny", CONVERTER)
        return self

    def asides(self) -> Story:
        """A waypoint deny (a tool named with HTML) and an AccessPolicy deny of an A2A call."""
        self.waypoint.write(
            RequestRecord(
                gateway=GATEWAY,
                src_identity=SUPPORT_BOT,
                src_addr=f"{PODS['support-bot'].ip}:40200",
                http_method="POST",
                path="/mcp/account",
                route=f"{PLATFORM}/account-mcp-route",
                backend=f"{PLATFORM}/account-mcp",
                dst_identity=identity(MCP, "account-mcp"),
                mcp_method="tools/call",
                mcp_tool=EVIL_TOOL,
                decision="deny",
                rule=f"{PLATFORM}/account-mcp",
                reason="mcp authorization: no rule allows the call",
                status=403,
                trace_id=secrets.token_hex(16),
            )
        )
        tick()
        caller = CHATBOT.removeprefix("spiffe://")  # kagent principals drop the scheme
        log = JsonLinesLog(self.files.logs / f"agent-{AGENTS}-fraud-bot.jsonl", component="kagent-agent")
        log.write(
            "warn",
            "accesspolicy",
            f"AccessPolicy fraud-bot-callers denies {caller} calling {AGENTS}/fraud-bot",
            {
                "agent": "fraud-bot",
                "namespace": AGENTS,
                "source.principal": caller,
                "source.addr": PODS["chatbot"].ip,
                "policy": "fraud-bot-callers",
                "reason": "no ALLOW rule names the caller",
                "jsonrpc.method": "SendMessage",
            },
        )
        tick()
        return self

    def all_acts(self, tmp: Path) -> Story:
        return self.setup().act1().rug_pull().act2().defence_on(tmp).act3().asides()

    def close(self) -> None:
        self.provider.shutdown()
