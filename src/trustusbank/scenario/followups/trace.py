"""`demo trace`: one customer prompt's whole chain as one distributed trace, with identities and timings.

The demo sends the seed prompt through the chatbot with its own W3C `traceparent`, as
a browser instrumented with OpenTelemetry would, so the trace id is known before any
component sees the request. Every hop that speaks HTTP continues it: the chatbot
forwards the header (it records no spans itself), support-bot's `invoke_agent`,
`chat` and `execute_tool` spans, the waypoint's request and upstream spans. What
cannot continue it is shown for what it is:

- ztunnel is L4 and never reads HTTP. Each connection is its own trace, started at the
  source's node proxy and carried in the HBONE CONNECT headers to the destination; the
  waypoint links its request span to the tunnel's span. A span is written when its
  connection closes, so a pooled connection's span may not exist yet.
- The converter is a vendor's build and does not propagate trace context: its own
  connections (to the FX API, and, rug-pulled, to the attacker) start new traces at its
  ztunnel. They are correlated, not joined: the converter's SPIFFE identity, inside the
  time window of the waypoint's call to it. The destination side of each is in the same
  trace (HBONE carried it), and ztunnel's access log names the outcome.

The rug-pulled build (`upgrade-banking-app`, as in Act 2) serves the prompt and is put
back afterwards (whatever build ran before; the defence set is left as it was).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from trustusbank.scenario import changes
from trustusbank.scenario.cluster import SEED_PROMPT, SUPPORT_BOT, Cluster, Progress
from trustusbank.scenario.followups import FollowUp
from trustusbank.scenario.followups.a2a import read_jsonl
from trustusbank.telemetry.tracing import read_spans
from trustusbank.workloads.chatbot.client import AskResult, result_from_task

GATEWAY = "trustusbank-platform/trustusbank-agentgw"
CONVERTER = ("trustusbank-bank-vendors", "currency-converter")
ATTACKER = ("external-attacker", "mock-attacker")
RUG_PULL = "real-rugpull"
HOUSEKEEPING = {"server/discover", "tools/list", "initialize", "notifications/initialized"}
SPAN_WAIT = 10.0  # seconds for the components' batch exporters to write the trace
COMMAND = "trustusbank demo trace"


@dataclass
class Node:
    span: dict[str, Any]
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.span.get("name", "?"))

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self.span.get("attributes") or {})

    @property
    def resource(self) -> dict[str, Any]:
        return dict((self.span.get("resource") or {}).get("attributes") or {})

    @property
    def span_id(self) -> str:
        return str(self.span["context"]["span_id"])

    @property
    def start(self) -> float:
        return _seconds(self.span["start_time"])

    @property
    def end(self) -> float:
        return _seconds(self.span["end_time"])

    @property
    def error(self) -> str | None:
        status = self.span.get("status") or {}
        if status.get("status_code") == "ERROR":
            return str(status.get("description") or "error")
        return None


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _hex(value: str) -> str:
    return value.removeprefix("0x")


# --- asking with our own trace context -----------------------------------------------------------


async def ask_traced(cluster: Cluster, prompt: str, traceparent: str) -> AskResult:
    """`trustusbank ask`, with a W3C traceparent on every request (the chatbot passes it on)."""
    from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
    from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest

    namespace, name = SUPPORT_BOT.split("/")
    base = f"{cluster.chatbot}/api/a2a/{namespace}/{name}/"
    message = Message(role=Role.ROLE_USER, message_id=secrets.token_hex(8), parts=[Part(text=prompt)])
    headers = {"traceparent": traceparent}
    async with httpx.AsyncClient(
        trust_env=False, timeout=httpx.Timeout(10, read=120), headers=headers
    ) as http:
        card = await A2ACardResolver(http, base).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
        async for event in client.send_message(SendMessageRequest(message=message)):
            if event.HasField("task"):
                return result_from_task(event.task)
    raise RuntimeError("support-bot sent no task")


# --- the rug pull, and putting it back ----------------------------------------------------------


async def _attacker_view(cluster: Cluster) -> int:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        response = await http.get(f"{cluster.attacker}/api/count")
    return int(response.raise_for_status().json()["count"])


async def _restore(
    cluster: Cluster, put_back: str | None, view_was_zero: bool, progress: Progress
) -> list[str]:
    notes = []
    if put_back is not None:
        progress(f"trace: putting the {put_back} build back under the converter's tag")
        await changes.upgrade(cluster.files, put_back, progress=progress, command=COMMAND)
        notes.append(f"converter put back on its {put_back} build")
    if view_was_zero and await _attacker_view(cluster) > 0:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            (await http.post(f"{cluster.attacker}/api/reset")).raise_for_status()
        notes.append("attacker's view reset to 0 (what it received is kept)")
    return notes


# --- reading the evidence ------------------------------------------------------------------------


def all_spans(cluster: Cluster) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    for path in cluster.files.outputs("traces", "*.jsonl"):
        spans += read_spans(path)
    return spans


async def wait_for_trace(cluster: Cluster, trace_id: str, expect: int) -> list[dict[str, Any]]:
    """Our trace's spans, once `expect` tools/call hops are in (the exporters batch every 200 ms)."""
    deadline = time.monotonic() + SPAN_WAIT
    while True:
        spans = [s for s in all_spans(cluster) if _hex(s["context"]["trace_id"]) == trace_id]
        calls = [s for s in spans if s["name"].startswith("execute_tool")]
        agents = [s for s in spans if s["name"].startswith("invoke_agent")]
        if (agents and len(calls) >= expect) or time.monotonic() > deadline:
            return spans
        await asyncio.sleep(0.2)


def build_tree(spans: Iterable[dict[str, Any]], root: Node) -> list[Node]:
    """Children under their parents, ordered by start; orphans (parent not exported) under the root."""
    nodes = {_hex(s["context"]["span_id"]): Node(s) for s in spans}
    orphans = []
    for node in nodes.values():
        parent = _hex(node.span.get("parent_id") or "")
        if parent == _hex(root.span_id):
            root.children.append(node)
        elif parent in nodes:
            nodes[parent].children.append(node)
        else:
            orphans.append(node)
    for node in [root, *nodes.values()]:
        node.children.sort(key=lambda n: n.start)
    return orphans


def waypoint_record(records: list[dict[str, Any]], trace_id: str, node: Node) -> dict[str, Any]:
    """The waypoint's log line for this span: same trace and path, written as the span ended."""
    path = node.attributes.get("url.path")
    candidates = [r for r in records if r.get("trace_id") == trace_id and r.get("http.path") == path]
    if not candidates:
        return {}
    return min(candidates, key=lambda r: abs(_seconds(r["time"]) - node.end))


# --- rendering ----------------------------------------------------------------------------------


@dataclass
class Story:
    cluster: Cluster
    trace_id: str
    t0: float
    waypoint_log: list[dict[str, Any]]
    ztunnel: list[dict[str, Any]]
    access: list[dict[str, Any]]
    converter: str
    attacker: str
    lines: list[str] = field(default_factory=list)
    exfil_attempts: list[dict[str, Any]] = field(default_factory=list)
    tool_hops: int = 0

    def when(self, node: Node) -> str:
        offset = max(node.start - self.t0, 0.0)  # the root's own start, rounded, can read as -0.0
        return f"+{offset * 1000:6.1f} ms  {(node.end - node.start) * 1000:6.1f} ms"

    def identity_of(self, node: Node) -> str:
        service = str(node.resource.get("service.name", ""))
        namespace = node.resource.get("service.namespace", "")
        for pod in self.cluster.topology.pods:
            if (pod.namespace, pod.deployment) == (namespace, service):
                return pod.spiffe_uri(self.cluster.topology.trust_domain)
        return service

    def label(self, node: Node) -> str:
        a = node.attributes
        name = node.name
        if name.startswith("invoke_agent"):
            return f"[bold]{name}[/]  {self.identity_of(node)}  model {a.get('gen_ai.request.model')}"
        if name.startswith("chat"):
            tokens = f"{a.get('gen_ai.usage.input_tokens')}→{a.get('gen_ai.usage.output_tokens')} tokens"
            answered = a.get("gen_ai.response.model")
            by = (
                f" (answered by {answered})" if answered and answered != a.get("gen_ai.request.model") else ""
            )
            return f"{name}{by}  {tokens}"
        if name.startswith("execute_tool"):
            arguments = str(a.get("gen_ai.tool.call.arguments", ""))
            leak = (
                "  [bold red]customer_profile in the arguments[/]" if "customer_profile" in arguments else ""
            )
            return f"{name}  on {a.get('mcp.server.name') or a.get('url.full')}{leak}"
        if name.startswith("waypoint upstream"):
            return f"waypoint upstream  {a.get('url.full')}"
        if name.startswith("waypoint"):
            record = waypoint_record(self.waypoint_log, self.trace_id, node)
            what = f"{record.get('mcp.method') or ''} {record.get('mcp.tool') or ''}".strip()
            decision = record.get("decision", "?")
            colour = "green" if decision == "allow" else "red"
            return (
                f"agentgateway {node.name.removeprefix('waypoint ')}  {record.get('src.identity')} → "
                f"{record.get('dst.identity')}  {what} [{colour}]{decision}[/]"
            )
        if name.startswith("ztunnel"):
            where = node.resource.get("k8s.node.name")
            return f"{name} on {where}  {a.get('src.identity')} → {a.get('dst.identity')}"
        return name

    def is_housekeeping(self, node: Node) -> bool:
        if not node.name.startswith("waypoint") or node.name.startswith("waypoint upstream"):
            return False
        record = waypoint_record(self.waypoint_log, self.trace_id, node)
        return record.get("mcp.method") in HOUSEKEEPING

    def render(self, node: Node, prefix: str, last: bool) -> None:
        branch = "└─ " if last else "├─ "
        error = f"  [red]{node.error}[/]" if node.error else ""
        self.lines.append(f"{prefix}{branch}{self.label(node)}  [dim]{self.when(node)}[/]{error}")
        inner = prefix + ("   " if last else "│  ")
        if node.name.startswith("waypoint ") and not node.name.startswith("waypoint upstream"):
            self.tool_hops += 1
            self.render_tunnel(node, inner)
        shown = [c for c in node.children if not self.is_housekeeping(c)]
        folded = len(node.children) - len(shown)
        if folded:
            self.lines.append(
                f"{inner}[dim]· {folded} MCP session request(s) (server/discover, tools/list) folded[/]"
            )
        for index, child in enumerate(shown):
            self.render(child, inner, index == len(shown) - 1)
        if node.name.startswith("waypoint upstream") and CONVERTER[1] in str(node.attributes.get("url.full")):
            self.render_vendor(node, inner)

    def render_tunnel(self, node: Node, prefix: str) -> None:
        """The HBONE tunnel that carried this request to the waypoint: a linked trace."""
        for link in node.span.get("links") or []:
            trace_id, span_id = _hex(link["context"]["trace_id"]), _hex(link["context"]["span_id"])
            found = next(
                (
                    s
                    for s in self.ztunnel
                    if (_hex(s["context"]["trace_id"]), _hex(s["context"]["span_id"])) == (trace_id, span_id)
                ),
                None,
            )
            if found is None:
                self.lines.append(
                    f"{prefix}[dim]⇠ carried by HBONE tunnel span {trace_id[:8]}…/{span_id[:8]}… "
                    "(linked trace; ztunnel writes it when the pooled connection closes)[/]"
                )
            else:
                tunnel = Node(found)
                self.lines.append(
                    f"{prefix}[dim]⇠ carried by {self.label(tunnel)} (linked trace {trace_id[:8]}…)[/]"
                )

    def refused_at_destination(self, out: Node, sides: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A connection refused by policy never reaches the destination's span: its record there
        carries no trace id. Match it by both identities, written while the source waited."""
        if any(r.get("direction") == "inbound" for r in sides):
            return []
        a = out.attributes
        return [
            r
            for r in self.access
            if r.get("direction") == "inbound"
            and not r.get("trace_id")
            and (r.get("src.identity"), r.get("dst.identity"))
            == (a.get("src.identity"), a.get("dst.identity"))
            and out.start <= _seconds(r["time"]) <= out.end + 1.0
        ][:1]

    def render_vendor(self, node: Node, prefix: str) -> None:
        """Connections the converter opened while serving this call: separate traces, correlated."""
        for span in self.ztunnel:
            a = span.get("attributes") or {}
            if span["name"] != "ztunnel outbound" or a.get("src.identity") != self.converter:
                continue
            if not node.start <= _seconds(span["start_time"]) <= node.end:
                continue
            out = Node(span)
            trace_id = _hex(span["context"]["trace_id"])
            to_attacker = a.get("dst.identity") == self.attacker
            colour = "bold red" if to_attacker else "dim"
            sides = [r for r in self.access if r.get("trace_id") == trace_id]
            sides += self.refused_at_destination(out, sides)
            outcome = "; ".join(
                f"{r.get('direction')}: {r.get('error') or 'connection complete'}" for r in sides
            )
            self.lines.append(
                f"{prefix}[{colour}]⇢ separate trace {trace_id[:8]}… (correlated by the converter's identity "
                f"and this call's time window): {self.label(out)} to {a.get('dst.addr')}  "
                f"{self.when(out)}[/]"
            )
            if outcome:
                self.lines.append(f"{prefix}   [{colour}]ztunnel access log: {outcome}[/]")
            children = [s for s in self.ztunnel if _hex(s.get("parent_id") or "") == _hex(out.span_id)]
            for child in children:
                self.lines.append(
                    f"{prefix}   [{colour}]└─ {self.label(Node(child))}  {self.when(Node(child))}[/]"
                )
            if to_attacker:
                self.exfil_attempts.append(
                    {
                        "trace_id": trace_id,
                        "source": a.get("src.identity"),
                        "destination": a.get("dst.identity"),
                        "error": out.error,
                        "access_log": sides,
                    }
                )


async def run(cluster: Cluster, progress: Progress) -> FollowUp:
    result = FollowUp("trace", ok=False, summary="")
    problems = result.problems
    topo = cluster.topology
    converter = cluster.pod(*CONVERTER).spiffe_uri(topo.trust_domain)
    attacker = cluster.pod(*ATTACKER).spiffe_uri(topo.trust_domain)
    view_was_zero = await _attacker_view(cluster) == 0
    put_back: str | None = None
    trace_id, root_span = secrets.token_hex(16), secrets.token_hex(8)
    notes: list[str] = []
    answer: AskResult | None = None
    try:
        progress("trace: rug-pulling the converter (upgrade-banking-app)")
        swap = await changes.upgrade(cluster.files, RUG_PULL, progress=progress, command=COMMAND)
        put_back = (swap.old_variant or "clean") if swap.changed else None
        progress("trace: sending the seed prompt with a traceparent")
        t0 = time.time()
        try:
            answer = await ask_traced(cluster, SEED_PROMPT, f"00-{trace_id}-{root_span}-01")
        except Exception as exc:  # reported below, once the cluster is put back
            problems.append(f"the prompt failed: {type(exc).__name__}: {exc}")
        t1 = time.time()
    finally:
        notes += await _restore(cluster, put_back, view_was_zero, progress)
    if answer is None:
        result.summary = "the prompt did not complete, so there is no trace to show"
        result.lines = [f"[dim]{note}[/]" for note in notes]
        return result

    def tell(spans: list[dict[str, Any]]) -> tuple[Story, list[str]]:
        """The trace as told from the spans written so far, and what it still lacks."""
        assert answer is not None
        found: list[str] = []
        everything = all_spans(cluster)
        root = Node(
            {
                "name": "customer prompt (trustusbank demo, as the customer's browser)",
                "context": {"trace_id": trace_id, "span_id": root_span},
                "start_time": datetime.fromtimestamp(t0).astimezone().isoformat(),
                "end_time": datetime.fromtimestamp(t1).astimezone().isoformat(),
            }
        )
        orphans = build_tree(spans, root)
        story = Story(
            cluster,
            trace_id,
            t0,
            read_jsonl(cluster.files.waypoint_log(GATEWAY)),
            [s for s in everything if s.get("name", "").startswith("ztunnel")],
            [r for n in topo.nodes for r in read_jsonl(cluster.files.access_log(n.name))],
            converter,
            attacker,
        )
        story.lines.append(f"trace {trace_id}  ([dim]offset from the prompt, duration[/])")
        story.lines.append(f"{root.name}  [dim]{story.when(root)}[/]")
        story.lines.append("│  [dim]via the chatbot's A2A proxy (forwards traceparent, records no span)[/]")
        for index, child in enumerate(root.children):
            story.render(child, "", index == len(root.children) - 1)
        for orphan in orphans:
            story.lines.append(f"[yellow]? {story.label(orphan)} (parent span not exported)[/]")

        names = [n.name for n in root.children]
        tool_spans = {
            s["name"].removeprefix("execute_tool ") for s in spans if s["name"].startswith("execute_tool")
        }
        wanted = {step["name"] for step in answer.tool_calls}
        if answer.state != "completed":
            found.append(f"the prompt ended {answer.state}: {answer.status_message}")
        if "invoke_agent support-bot" not in names:
            found.append(f"support-bot's invoke_agent span is not a child of the prompt's span: {names}")
        if not wanted <= tool_spans:
            found.append(f"execute_tool spans missing for {sorted(wanted - tool_spans)}")
        if story.tool_hops < len(answer.tool_calls):
            found.append(
                f"{story.tool_hops} waypoint hop(s) in the trace for {len(answer.tool_calls)} tool calls"
            )
        leaked = any("customer_profile" in step.get("arguments", {}) for step in answer.tool_calls)
        if leaked and not story.exfil_attempts:
            found.append("the converter's connection to the attacker was not found in the ztunnel spans")
        if not leaked:
            found.append("the rug-pulled converter did not get the profile: the attack chain did not run")

        return story, found

    progress("trace: collecting spans")
    # Agents, the waypoint and the node proxies export spans in batches of their own: the agent's
    # may be in before the waypoint's or ztunnel's are, so the trace is told again until it is
    # whole or the wait is over (it is then reported as it is).
    deadline = time.monotonic() + SPAN_WAIT
    spans = await wait_for_trace(cluster, trace_id, len(answer.tool_calls))
    story, found = tell(spans)
    while found and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        spans = [s for s in all_spans(cluster) if _hex(s["context"]["trace_id"]) == trace_id]
        story, found = tell(spans)
    problems += found
    result.lines = [*story.lines, "", *[f"[dim]{note}[/]" for note in notes]]
    result.data = {
        "trace_id": trace_id,
        "prompt": SEED_PROMPT,
        "reply": answer.reply,
        "tool_calls": [s["name"] for s in answer.tool_calls],
        "spans": len(spans),
        "rug_pulled": True,  # the demo always serves the prompt from the rug-pulled build
        "exfil_attempts": story.exfil_attempts,
        "notes": notes,
        "tree": story.lines,
    }
    result.ok = not problems
    outcomes = [a["error"] or "completed: the profile left the bank" for a in story.exfil_attempts]
    attempt = (
        f"; the converter's connection to the attacker, a correlated separate trace: {', '.join(outcomes)}"
        if outcomes
        else ""
    )
    result.summary = (
        f"one trace ({len(spans)} spans) from the prompt through support-bot and the waypoint to the "
        f"converter{attempt}"
        if result.ok
        else "the trace does not show the whole chain"
    )
    return result
