"""`demo egress-llm`: the agents' model calls leave through the waypoint, acting as an LLM gateway.

Not a side proxy: the same waypoint that judges the MCP calls is given an agentgateway AI
backend (`spec.ai.provider.openai` with a host/port override to the scripted model's
Service) behind the route `/llm/openai`, so a model call arrives with the caller's
verified SPIFFE identity and leaves with the waypoint's, and the request log, the span
and `agentgateway_gen_ai_client_token_usage` carry the model names and token counts per
workload. The demo applies that (`LLM_GATEWAY`, the file a cluster would get) with the
AuthorizationPolicy that lets the waypoint reach the model (the defence set admits only
the chatbot and the agents there), and removes both when it ends.

How an agent is moved onto it, on a cluster: its ModelConfig's `openAI.baseUrl` is
pointed at the route, and kagent re-renders the agent's config, whose hash is on the
pod template, so the Deployment rolls. The embedded runtime cannot do that step yet:
the demo offers the ModelConfig change to `apply` (which validates it with what runs and,
as `kubectl apply` does, configures deploy/'s ModelConfig of that name; a refusal fails the
demo) and undoes it, since no agent is re-rendered from it. What it does instead: it runs
support-bot's own agent loop once inside support-bot's pod, as `kubectl exec` would,
with its resolved spec and only the model's base URL changed; every model call then
crosses the gateway as support-bot. The gateway's token counts are checked against
the agent's own.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.ports import METRICS_PORT
from trustusbank.cluster.watch import load_in_force
from trustusbank.env import AGENT_SPEC
from trustusbank.manifests.manifest import ManifestError
from trustusbank.runtime import control
from trustusbank.runtime.apply import apply, delete
from trustusbank.scenario.cluster import Cluster, Progress
from trustusbank.scenario.followups import FollowUp
from trustusbank.scenario.followups.a2a import metric, read_jsonl, run_in_pod, sizes

AGENTS = "trustusbank-bank-agents"
GATEWAY = "trustusbank-platform/trustusbank-agentgw"
GATEWAY_HOST = "trustusbank-agentgw.trustusbank-platform.svc.cluster.local"
LLM_BASE_URL = f"http://{GATEWAY_HOST}:8080/llm/openai/v1"
LLM_ROUTE = "trustusbank-platform/llm-openai-route"
PROMPT = "I am customer 12345. What is my balance?"
RELOAD_WAIT = 10.0
BASE_URL_ENV = "DEMO_LLM_BASE_URL"
PROMPT_ENV = "DEMO_LLM_PROMPT"

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

# support-bot's own loop, run once in its pod with the model's base URL pointed at the gateway.
AGENT_RUN = f"""\
import asyncio, dataclasses, json, os, secrets
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from trustusbank.agents.model.factory import client_for
from trustusbank.agents.a2a.delegation import AgentCaller
from trustusbank.agents.a2a.loop import AgentLoop
from trustusbank.agents.a2a.mcp_tools import McpToolbox
from trustusbank.agents.a2a.metrics import AgentMetrics
from trustusbank.agents.a2a.sessions import SessionStore
from trustusbank.manifests.kagent.spec import AgentSpec

async def main():
    spec = AgentSpec.from_json(os.environ["{AGENT_SPEC.name}"])
    model = dataclasses.replace(spec.model, base_url=os.environ["{BASE_URL_ENV}"])
    spec = dataclasses.replace(spec, model=model)
    client, toolbox = client_for(spec.model), McpToolbox(spec.mcp_servers)
    tracer = TracerProvider().get_tracer("trustusbank demo egress-llm")
    loop = AgentLoop(spec, client, toolbox=toolbox, agents=AgentCaller(timeout=spec.step_timeout_seconds),
                     sessions=SessionStore(), tracer=tracer, metrics=AgentMetrics(spec, CollectorRegistry()))
    try:
        with tracer.start_as_current_span("kubectl exec support-bot") as span:
            result = await loop.run(os.environ["{PROMPT_ENV}"], secrets.token_hex(8))
    finally:
        await toolbox.aclose()
        await client.aclose()
    print(json.dumps({{
        "trace_id": format(span.get_span_context().trace_id, "032x"),
        "reply": result.reply, "tools": [s.name for s in result.steps], "model_calls": result.model_calls,
        "input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens,
        "base_url": spec.model.base_url, "model": spec.model.model,
    }}))

asyncio.run(main())
"""


def _deploy(cluster: Cluster) -> Path:
    status = control.read_status(cluster.files) or {}
    return Path(str(status.get("deploy") or "deploy"))


def _agent_spec(cluster: Cluster, deploy: Path, agent: str) -> str:
    """The agent's resolved spec, as kagent's controller step of `up` wrote it into its Deployment."""
    bundle = load_in_force(deploy, cluster.files)
    deployment = bundle.get("Deployment", AGENTS, agent)
    if deployment is None:
        raise RuntimeError(f"no Deployment {AGENTS}/{agent} in the manifests in force")
    container = deployment.body["spec"]["template"]["spec"]["containers"][0]
    value = next((e.get("value") for e in container.get("env", []) if e.get("name") == AGENT_SPEC.name), None)
    if not value:
        raise RuntimeError(f"{AGENTS}/{agent} has no {AGENT_SPEC.name}")
    return str(value)


def _try_model_config_change(files: ClusterFiles, deploy: Path, workdir: Path) -> tuple[str, str | None]:
    """Offer the cluster's change to the embedded `apply`: what happened, in one sentence, and the
    problem if `apply` refused it (a demo that could not make its change did not do what it says)."""
    patch = workdir / "demo-egress-llm-modelconfig.yaml"
    patch.write_text(MODEL_CONFIG_PATCH)
    try:
        installed = apply(files, deploy, [patch])
    except ManifestError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = first.removeprefix(f"{patch}:").lstrip("0123456789: ")
        return f"refused: {reason}", f"apply refused the ModelConfig change: {reason}"
    delete(files, installed)  # accepted: the demo does not roll agents yet, so undo it at once
    return "accepted, but this demo does not roll the agents onto it yet (undone)", None


def _text_since(log: Path, start: int) -> str:
    return log.read_bytes()[start:].decode("utf-8", "replace") if log.exists() else ""


def _policy_loads(log: Path, start: int) -> list[str]:
    """The node proxy's "policies loaded" lines after byte `start` of its log."""
    return [line for line in _text_since(log, start).splitlines() if "policies loaded:" in line]


async def _policies_loaded(log: Path, start: int, ref: str, present: bool) -> float | None:
    """Seconds until the node proxy logs a policy set with (or without) `ref`; None if it did not."""
    started = time.monotonic()
    while time.monotonic() - started < RELOAD_WAIT:
        loads = _policy_loads(log, start)
        if loads and (ref in loads[-1]) == present:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


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


async def run(cluster: Cluster, progress: Progress) -> FollowUp:
    result = FollowUp("egress-llm", ok=False, summary="")
    problems = result.problems
    topo = cluster.topology
    support = cluster.pod(AGENTS, "support-bot")
    model_pod = cluster.pod(AGENTS, "scripted-model")
    support_id = support.spiffe_uri(topo.trust_domain)
    model_id = model_pod.spiffe_uri(topo.trust_domain)
    deploy = _deploy(cluster)
    node_log = cluster.files.ztunnel_log(model_pod.node)
    waypoint_log = cluster.files.waypoint_log(GATEWAY)
    waypoint_pod = topo.waypoint(GATEWAY)
    if waypoint_pod is None:
        raise RuntimeError(f"no waypoint pod for {GATEWAY}")
    waypoint_stderr = cluster.files.pod_log(waypoint_pod.namespace, waypoint_pod.name)
    policy_ref = f"{AGENTS}/{ALLOW_NAME}"
    answer: dict[str, Any] = {}

    with tempfile.TemporaryDirectory(prefix="trustusbank-egress-llm-") as tmp:
        workdir = Path(tmp)
        progress("egress-llm: offering the ModelConfig change to apply")
        config_change, refused = _try_model_config_change(cluster.files, deploy, workdir)
        if refused is not None:
            problems.append(refused)
        spec_json = _agent_spec(cluster, deploy, "support-bot")

        progress("egress-llm: applying the LLM backend, its route and the model's ALLOW")
        manifest = workdir / APPLIED_AS
        manifest.write_text(LLM_GATEWAY)
        marks = sizes([node_log, waypoint_stderr])
        installed = apply(cluster.files, deploy, [manifest])
        try:
            if await _waypoint_loaded(waypoint_stderr, marks[waypoint_stderr]) is None:
                problems.append(f"the waypoint did not load the LLM route in {RELOAD_WAIT:g}s")
            if await _policies_loaded(node_log, marks[node_log], policy_ref, present=True) is None:
                problems.append(f"ztunnel on {model_pod.node} did not load {policy_ref} in {RELOAD_WAIT:g}s")
            before = await _waypoint_metrics(cluster)
            log_mark = sizes([waypoint_log])[waypoint_log]
            progress("egress-llm: support-bot's loop, in its pod, with the model behind the waypoint")
            code = AGENT_RUN
            env = {AGENT_SPEC.name: spec_json, BASE_URL_ENV: LLM_BASE_URL, PROMPT_ENV: PROMPT}
            status, out, err = await run_in_pod(cluster, f"{AGENTS}/support-bot", code, extra_env=env)
            try:
                answer = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                problems.append(f"support-bot's loop failed in its pod (exit {status}): {err.strip()[-600:]}")
            after = await _waypoint_metrics(cluster)
        finally:
            marks = sizes([node_log, waypoint_stderr])
            delete(cluster.files, installed)
            if await _policies_loaded(node_log, marks[node_log], policy_ref, present=False) is None:
                problems.append(f"ztunnel on {model_pod.node} still enforces {policy_ref}")
            if await _waypoint_loaded(waypoint_stderr, marks[waypoint_stderr]) is None:
                problems.append("the waypoint did not drop the LLM route")

    # The model client sends no traceparent (the tool calls do), so the model calls are found by
    # route and caller identity in the window of the run; the tool calls by the run's trace.
    trace_id = answer.get("trace_id")
    window = read_jsonl(waypoint_log, log_mark)
    llm = [r for r in window if r.get("route") == LLM_ROUTE and r.get("src.identity") == support_id]
    tools = [
        r
        for r in window
        if trace_id and r.get("trace_id") == trace_id and r.get("mcp.method") == "tools/call"
    ]
    records = [r for r in window if r in llm or r in tools]
    gateway_in = sum(int(r.get("gen_ai.usage.input_tokens") or 0) for r in llm)
    gateway_out = sum(int(r.get("gen_ai.usage.output_tokens") or 0) for r in llm)
    metric_in = _tokens(after, "input", support_id) - _tokens(before, "input", support_id)
    metric_out = _tokens(after, "output", support_id) - _tokens(before, "output", support_id)
    if answer:
        if len(llm) != answer["model_calls"]:
            problems.append(
                f"{len(llm)} model call(s) crossed the gateway, the agent made {answer['model_calls']}"
            )
        if (gateway_in, gateway_out) != (answer["input_tokens"], answer["output_tokens"]):
            problems.append(
                f"the gateway counted {gateway_in}→{gateway_out} tokens, the agent "
                f"{answer['input_tokens']}→{answer['output_tokens']}"
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
        f"on a cluster: [bold]{ON_A_CLUSTER}[/] — kagent re-renders the agents' config and their pods roll "
        "(the config hash is on the pod template)",
        f"embedded: the ModelConfig change was {config_change}; a rollout restart re-creates the pod from "
        "the manifests loaded at `up`, so the running support-bot keeps its direct model URL",
        f"so: support-bot's own loop ran once inside its pod (as {support_id}) "
        f"with openAI.baseUrl {LLM_BASE_URL}",
        f"  prompt: {PROMPT}",
        f"  reply:  {answer.get('reply', '(none)')}",
        f"  {answer.get('model_calls', 0)} model call(s), tools {answer.get('tools', [])}; "
        f"the agent counted {answer.get('input_tokens')}→{answer.get('output_tokens')} tokens",
        f"waypoint request log ({waypoint_log.name}), in order:",
    ]
    for r in records:
        if r.get("route") == LLM_ROUTE:
            lines.append(
                f"  {r.get('http.method')} {r.get('http.path')}  "
                f"{r.get('src.identity')} → {r.get('dst.identity')}  "
                f"gen_ai.request.model={r.get('gen_ai.request.model')} "
                f"gen_ai.response.model={r.get('gen_ai.response.model')} "
                f"tokens {r.get('gen_ai.usage.input_tokens')}→{r.get('gen_ai.usage.output_tokens')}  "
                f"{r.get('http.status')}  {r.get('duration_ms')} ms"
            )
        elif r.get("mcp.method") == "tools/call":
            lines.append(f"  [dim]tools/call {r.get('mcp.tool')} ({r.get('route')}) {r.get('decision')}[/]")
    lines += [
        f"gateway total {gateway_in}→{gateway_out} tokens; agentgateway_gen_ai_client_token_usage_sum"
        f'{{route="{LLM_ROUTE}",source_principal=support-bot}} +{metric_in:g} input, +{metric_out:g} output',
        f"put back: {APPLIED_AS} (backend, route, {ALLOW_NAME}) removed; nothing else was changed",
    ]
    result.lines = lines
    result.data = {
        "gateway": {
            "route": LLM_ROUTE,
            "backend": "trustusbank-platform/scripted-model",
            "base_url": LLM_BASE_URL,
        },
        "applied": LLM_GATEWAY,
        "on_a_cluster": ON_A_CLUSTER,
        "model_config_change": config_change,
        "missing": ("a rollout restart that re-renders an agent's spec from the manifests in force"),
        "agent_run": answer,
        "model_calls": llm,
        "tool_calls": tools,
        "tokens": {"gateway": [gateway_in, gateway_out], "metric": [metric_in, metric_out]},
    }
    result.ok = not problems
    result.summary = (
        f"support-bot's {len(llm)} model call(s) crossed the waypoint as an LLM gateway, "
        f"{gateway_in}→{gateway_out} tokens logged per identity (the running agent itself is not switched: "
        "the embedded runtime cannot change its ModelConfig yet)"
        if result.ok
        else "the demo did not do what it says: " + "; ".join(problems)
    )
    return result
