"""`demo egress-llm`: the agents' model calls leave through the waypoint, acting as an LLM gateway.

Not a side proxy: the same waypoint that judges the MCP calls is given an agentgateway AI
backend (`spec.ai.provider.openai` with a host/port override to the scripted model's
Service) behind the route `/llm/openai`, so a model call arrives with the caller's
verified SPIFFE identity and leaves with the waypoint's, and the request log, the span
and `agentgateway_gen_ai_client_token_usage` carry the model names and token counts per
workload. The demo applies that (`LLM_GATEWAY`, the file a cluster would get) with the
AuthorizationPolicy that lets the waypoint reach the model (the defence set admits only
the chatbot and the agents there), and removes both when it ends.

How an agent is moved onto it, as on a cluster: its ModelConfig's `openAI.baseUrl` is
pointed at the route (`MODEL_CONFIG_PATCH`, applied as `kubectl apply` would, over
deploy/'s ModelConfig of that name); kagent re-renders every agent that uses it, and since
the rendered config's hash is on the pod template, each of those Deployments rolls. The
embedded kagent controller renders the same spec into the Deployment, and the demo rolls
exactly the agents whose rendered spec changed (a rollout restart starts a pod from the
manifests in force). Then the customer's prompt goes through the chatbot as ever, and
every model call support-bot makes crosses the gateway with support-bot's identity; the
gateway's token counts are checked against the agent's own span. At the end the change
is undone the same way: the ModelConfig file removed, the same agents rolled back.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import trustusbank.agents.a2a.spans as attr
from trustusbank.cluster.ports import METRICS_PORT
from trustusbank.cluster.watch import load_in_force
from trustusbank.env import AGENT_SPEC
from trustusbank.manifests.bundle import Bundle
from trustusbank.runtime import control
from trustusbank.runtime.apply import actor as apply_actor
from trustusbank.runtime.apply import apply, delete
from trustusbank.runtime.defence import DefenceError, wait_loaded
from trustusbank.scenario import changes
from trustusbank.scenario.cluster import Cluster, Progress
from trustusbank.scenario.followups import FollowUp
from trustusbank.scenario.followups.a2a import metric, read_jsonl, sizes
from trustusbank.scenario.followups.trace import ask_traced, wait_for_trace
from trustusbank.workloads.chatbot.client import AskResult

AGENTS = "trustusbank-bank-agents"
GATEWAY = "trustusbank-platform/trustusbank-agentgw"
GATEWAY_HOST = "trustusbank-agentgw.trustusbank-platform.svc.cluster.local"
LLM_BASE_URL = f"http://{GATEWAY_HOST}:8080/llm/openai/v1"
LLM_ROUTE = "trustusbank-platform/llm-openai-route"
PROMPT = "I am customer 12345. What is my balance?"
RELOAD_WAIT = 10.0
MODEL_CONFIG_FILE = "demo-egress-llm-modelconfig.yaml"
COMMAND = "trustusbank demo egress-llm"

# On a cluster this is the whole change (kagent rolls the agents that use the ModelConfig).
MODEL_CONFIG_PATCH = f"""\
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata:
  name: scripted
  namespace: {AGENTS}
spec:
  provider: OpenAI
  model: trustusbank-scripted
  apiKeySecret: scripted-model-key
  apiKeySecretKey: OPENAI_API_KEY
  openAI:
    baseUrl: {LLM_BASE_URL}
"""
ON_A_CLUSTER = (
    f"kubectl -n {AGENTS} patch modelconfig scripted --type merge "
    f'-p \'{{"spec":{{"openAI":{{"baseUrl":"{LLM_BASE_URL}"}}}}}}\''
)

ALLOW_NAME = "allow-llm-gateway-to-model"
APPLIED_AS = "demo-egress-llm.yaml"
LLM_GATEWAY = f"""\
# Applied by `trustusbank demo egress-llm`, removed when it ends. The waypoint as the agents'
# LLM gateway: an AI backend for the scripted model's OpenAI-compatible API (host/port override
# api.openai.com:443, no TLS added: HBONE carries the bytes; pathPrefix makes the upstream path
# /v1/chat/completions; openai.model pins the model), the route to it, and the model's door
# opened to the waypoint's identity (and still the agents').
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: scripted-model
  namespace: trustusbank-platform
spec:
  ai:
    provider:
      openai:
        model: trustusbank-scripted
      host: scripted-model.{AGENTS}.svc.cluster.local
      port: 8080
      pathPrefix: /v1
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: llm-openai-route
  namespace: trustusbank-platform
spec:
  parentRefs:
    - name: trustusbank-agentgw
      kind: Gateway
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: /llm/openai
      backendRefs:
        - group: agentgateway.dev
          kind: AgentgatewayBackend
          name: scripted-model
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {ALLOW_NAME}
  namespace: {AGENTS}
spec:
  selector:
    matchLabels:
      app: scripted-model
  action: ALLOW
  rules:
    - from:
        - source:
            principals:
              - cluster.local/ns/trustusbank-platform/sa/trustusbank-agentgw
              - cluster.local/ns/{AGENTS}/sa/*
      to:
        - operation:
            ports: ["8080"]
"""


def _agent_spec(bundle: Bundle, agent: str) -> str:
    """The agent's resolved spec, as kagent's controller wrote it into its Deployment."""
    deployment = bundle.get("Deployment", AGENTS, agent)
    if deployment is None:
        raise RuntimeError(f"no Deployment {AGENTS}/{agent} in the manifests in force")
    container = deployment.body["spec"]["template"]["spec"]["containers"][0]
    value = next((e.get("value") for e in container.get("env", []) if e.get("name") == AGENT_SPEC.name), None)
    if not value:
        raise RuntimeError(f"{AGENTS}/{agent} has no {AGENT_SPEC.name}")
    return str(value)


def _rendered(cluster: Cluster, deploy: Path) -> dict[str, str]:
    """Each agent's rendered spec (what kagent's controller puts in its Deployment), by agent name."""
    bundle = load_in_force(deploy, cluster.files)
    names = [m.name for m in bundle.objects if (m.kind, m.namespace) == ("Agent", AGENTS)]
    return {name: _agent_spec(bundle, name) for name in names}


async def _roll(cluster: Cluster, agents: list[str], progress: Progress) -> list[str]:
    """Roll the agents' Deployments together, as kagent's rollouts run when their rendered config changes."""
    actor = apply_actor()
    await asyncio.gather(
        *(
            changes.restart(
                cluster.files, f"{AGENTS}/{agent}", actor=actor, command=COMMAND, progress=progress
            )
            for agent in agents
        )
    )
    return list(agents)


def _text_since(log: Path, start: int) -> str:
    return log.read_bytes()[start:].decode("utf-8", "replace") if log.exists() else ""


async def _waypoint_loaded(log: Path, start: int) -> float | None:
    """Seconds until the waypoint logs a configuration load after byte `start`; None if it did not.

    A refused configuration (the waypoint keeps its last good one) raises RuntimeError."""
    started = time.monotonic()
    while time.monotonic() - started < RELOAD_WAIT:
        text = _text_since(log, start)
        if "configuration change refused" in text:
            raise RuntimeError(f"the waypoint refused the configuration: {text.strip().splitlines()[-1]}")
        if "configuration loaded" in text:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def _waypoint_metrics(cluster: Cluster) -> str:
    pod = cluster.topology.waypoint(GATEWAY)
    if pod is None:
        raise RuntimeError(f"no waypoint pod for {GATEWAY}")
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        response = await http.get(f"http://{pod.ip}:{METRICS_PORT}/metrics")
    return response.raise_for_status().text


def _tokens(text: str, kind: str, principal: str) -> float:
    return metric(
        text,
        "agentgateway_gen_ai_client_token_usage_sum",
        gen_ai_token_type=kind,
        route=LLM_ROUTE,
        source_principal=principal,
    )


def _agent_usage(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """support-bot's own account of the run, from its spans: model calls, tokens, tools."""

    def named(prefix: str) -> list[dict[str, Any]]:
        return [
            sp
            for sp in spans
            if sp["name"].startswith(prefix)
            and (sp.get("attributes") or {}).get(attr.AGENT_NAME, "support-bot") == "support-bot"
        ]

    invoke = next(iter(named(attr.INVOKE_AGENT)), None)
    attributes = (invoke or {}).get("attributes") or {}
    return {
        "model_calls": len(named(f"{attr.CHAT} ")),
        "input_tokens": attributes.get(attr.INPUT_TOKENS),
        "output_tokens": attributes.get(attr.OUTPUT_TOKENS),
        "model": attributes.get(attr.REQUEST_MODEL),
    }


@dataclass
class Marks:
    """Where the logs the demo reads stood before a change, to read only what came after."""

    node_log: Path
    waypoint_stderr: Path
    at: dict[Path, int] = field(default_factory=dict)

    def take(self) -> Marks:
        self.at = sizes([self.node_log, self.waypoint_stderr])
        return self

    async def loaded(self, policy_ref: str, present: bool, problems: list[str]) -> None:
        verb = "load" if present else "drop"
        if await _waypoint_loaded(self.waypoint_stderr, self.at[self.waypoint_stderr]) is None:
            problems.append(f"the waypoint did not {verb} the LLM route in {RELOAD_WAIT:g}s")
        wanted, unwanted = ({policy_ref}, set()) if present else (set(), {policy_ref})
        try:  # the node proxy's reload, read as `policies on|off` reads it
            await wait_loaded({self.node_log: self.at[self.node_log]}, wanted, unwanted)
        except DefenceError as exc:
            problems.append(
                f"{self.node_log.stem} did not {'load' if present else 'drop'} {policy_ref}: {exc}"
            )


async def run(cluster: Cluster, progress: Progress) -> FollowUp:
    result = FollowUp("egress-llm", ok=False, summary="")
    problems = result.problems
    topo = cluster.topology
    support = cluster.pod(AGENTS, "support-bot")
    model_pod = cluster.pod(AGENTS, "scripted-model")
    support_id = support.spiffe_uri(topo.trust_domain)
    model_id = model_pod.spiffe_uri(topo.trust_domain)
    deploy = control.deploy_of(cluster.files)
    waypoint_log = cluster.files.waypoint_log(GATEWAY)
    waypoint_pod = topo.waypoint(GATEWAY)
    if waypoint_pod is None:
        raise RuntimeError(f"no waypoint pod for {GATEWAY}")
    marks = Marks(
        cluster.files.ztunnel_log(model_pod.node),
        cluster.files.pod_log(waypoint_pod.namespace, waypoint_pod.name),
    )
    policy_ref = f"{AGENTS}/{ALLOW_NAME}"
    answer: AskResult | None = None
    usage: dict[str, Any] = {}
    rolled: list[str] = []
    trace_id = secrets.token_hex(16)
    log_mark = 0
    before = after = ""

    with tempfile.TemporaryDirectory(prefix="trustusbank-egress-llm-") as tmp:
        workdir = Path(tmp)
        progress("egress-llm: applying the LLM backend, its route and the model's ALLOW")
        (workdir / APPLIED_AS).write_text(LLM_GATEWAY)
        marks.take()
        installed = apply(cluster.files, deploy, [workdir / APPLIED_AS])
        try:
            await marks.loaded(policy_ref, True, problems)
            (workdir / MODEL_CONFIG_FILE).write_text(MODEL_CONFIG_PATCH)
            rendered = _rendered(cluster, deploy)
            progress("egress-llm: pointing ModelConfig scripted at the gateway")
            changed = apply(cluster.files, deploy, [workdir / MODEL_CONFIG_FILE])
            try:
                now = _rendered(cluster, deploy)
                moved = sorted(a for a in now if now[a] != rendered.get(a))
                if "support-bot" not in moved:
                    problems.append("the ModelConfig change did not reach support-bot's rendered spec")
                progress(f"egress-llm: rolling {', '.join(moved)}, as kagent does when their config changes")
                rolled = await _roll(cluster, moved, progress)
                before = await _waypoint_metrics(cluster)
                log_mark = sizes([waypoint_log])[waypoint_log]
                progress("egress-llm: the customer's prompt, through the chatbot")
                answer = await ask_traced(cluster, PROMPT, f"00-{trace_id}-{secrets.token_hex(8)}-01")
                spans = await wait_for_trace(cluster, trace_id, len(answer.tool_calls))
                usage = _agent_usage(spans)
                after = await _waypoint_metrics(cluster)
            finally:
                progress("egress-llm: putting ModelConfig scripted back, and the agents with it")
                delete(cluster.files, changed)
                await _roll(cluster, rolled, progress)
        finally:
            marks.take()
            delete(cluster.files, installed)
            await marks.loaded(policy_ref, False, problems)

    # The model client sends no traceparent (the tool calls do), so the model calls are found by
    # route and caller identity in the window of the run; the tool calls by the run's trace.
    window = read_jsonl(waypoint_log, log_mark) if answer is not None else []
    llm = [r for r in window if r.get("route") == LLM_ROUTE and r.get("src.identity") == support_id]
    tools = [r for r in window if r.get("trace_id") == trace_id and r.get("mcp.method") == "tools/call"]
    gateway_in = sum(int(r.get("gen_ai.usage.input_tokens") or 0) for r in llm)
    gateway_out = sum(int(r.get("gen_ai.usage.output_tokens") or 0) for r in llm)
    metric_in = _tokens(after, "input", support_id) - _tokens(before, "input", support_id) if after else 0.0
    metric_out = (
        _tokens(after, "output", support_id) - _tokens(before, "output", support_id) if after else 0.0
    )
    if answer is not None:
        if answer.state != "completed":
            problems.append(f"support-bot's task ended {answer.state}: {answer.status_message}")
        if not llm:
            problems.append("no model call of support-bot's crossed the gateway")
        if len(llm) != usage.get("model_calls"):
            problems.append(
                f"{len(llm)} model call(s) crossed the gateway, the agent's spans show "
                f"{usage.get('model_calls')}"
            )
        if [gateway_in, gateway_out] != [usage.get("input_tokens"), usage.get("output_tokens")]:
            problems.append(
                f"the gateway counted {gateway_in}→{gateway_out} tokens, the agent "
                f"{usage.get('input_tokens')}→{usage.get('output_tokens')}"
            )
        if (metric_in, metric_out) != (gateway_in, gateway_out):
            problems.append(
                f"the token histogram moved {metric_in:g}→{metric_out:g}, "
                f"the log says {gateway_in}→{gateway_out}"
            )
        wrong = [r for r in llm if (r.get("src.identity"), r.get("dst.identity")) != (support_id, model_id)]
        if wrong:
            problems.append(f"model calls with unexpected identities: {wrong[:1]}")
        if any(not r.get("gen_ai.response.model") or r.get("http.status") != 200 for r in llm):
            problems.append("a model call through the gateway failed or named no model")

    lines = [
        f"LLM gateway: AgentgatewayBackend trustusbank-platform/scripted-model (ai.provider.openai → "
        f"scripted-model.{AGENTS}:8080, pathPrefix /v1) behind HTTPRoute {LLM_ROUTE} (/llm/openai)",
        f"the change: ModelConfig {AGENTS}/scripted openAI.baseUrl → {LLM_BASE_URL}",
        f"  on a cluster: [bold]{ON_A_CLUSTER}[/]",
        f"  kagent re-rendered and rolled: {', '.join(rolled) or 'nothing'} (their rendered config changed)",
        f"  prompt (through the chatbot): {PROMPT}",
        f"  reply:  {answer.reply if answer else '(none)'}",
        f"  support-bot's spans: {usage.get('model_calls', 0)} model call(s), "
        f"{usage.get('input_tokens')}→{usage.get('output_tokens')} tokens; "
        f"tools {[c.get('name') for c in answer.tool_calls] if answer else []}",
        f"waypoint request log ({waypoint_log.name}), in order:",
    ]
    for r in window:
        if r in llm:
            lines.append(
                f"  {r.get('http.method')} {r.get('http.path')}  "
                f"{r.get('src.identity')} → {r.get('dst.identity')}  "
                f"gen_ai.request.model={r.get('gen_ai.request.model')} "
                f"gen_ai.response.model={r.get('gen_ai.response.model')} "
                f"tokens {r.get('gen_ai.usage.input_tokens')}→{r.get('gen_ai.usage.output_tokens')}  "
                f"{r.get('http.status')}  {r.get('duration_ms')} ms"
            )
        elif r in tools:
            lines.append(f"  [dim]tools/call {r.get('mcp.tool')} ({r.get('route')}) {r.get('decision')}[/]")
    lines += [
        f"gateway total {gateway_in}→{gateway_out} tokens; agentgateway_gen_ai_client_token_usage_sum"
        f'{{route="{LLM_ROUTE}",source_principal=support-bot}} +{metric_in:g} input, +{metric_out:g} output',
        f"put back: the ModelConfig as deploy/ declares it, {', '.join(rolled) or 'no agent'} rolled back; "
        f"{APPLIED_AS} (backend, route, {ALLOW_NAME}) removed",
    ]
    result.lines = lines
    result.data = {
        "gateway": {
            "route": LLM_ROUTE,
            "backend": "trustusbank-platform/scripted-model",
            "base_url": LLM_BASE_URL,
        },
        "applied": LLM_GATEWAY,
        "model_config": MODEL_CONFIG_PATCH,
        "on_a_cluster": ON_A_CLUSTER,
        "rolled": rolled,
        "reply": answer.reply if answer else None,
        "agent": usage,
        "model_calls": llm,
        "tool_calls": tools,
        "tokens": {"gateway": [gateway_in, gateway_out], "metric": [metric_in, metric_out]},
    }
    result.ok = not problems
    result.summary = (
        f"support-bot, rolled onto the changed ModelConfig, sent its {len(llm)} model call(s) through the "
        f"waypoint as an LLM gateway: {gateway_in}→{gateway_out} tokens logged per identity"
        if result.ok
        else "the demo did not do what it says: " + "; ".join(problems)
    )
    return result
