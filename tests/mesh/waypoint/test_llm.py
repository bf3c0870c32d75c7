"""The waypoint as an LLM gateway: agentgateway's `spec.ai` backend, OpenAI chat completions, token evidence.

The end-to-end tests put the real proxy (WaypointApp) on a port-0 socket in front of the
scripted model's real OpenAI API and call it with the agents' own OpenAI client; only the
HBONE ingress is replaced, by a stub that names the caller as the tunnel would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import generate_latest

from tests.serving import serving
from trustusbank.agents.model.openai_client import OpenAIChatClient
from trustusbank.agents.model.types import Message, ModelRequest, ToolSpec
from trustusbank.agents.scripted.http_app import create_app
from trustusbank.agents.scripted.model import ScriptedModel
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.gateway.objects import LlmProvider
from trustusbank.manifests.gateway.schema import check_agentgateway_backend
from trustusbank.manifests.manifest import Manifest
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.waypoint.ingress import Caller
from trustusbank.mesh.waypoint.llm import LlmRefused, prepare_request, read_usage
from trustusbank.mesh.waypoint.proxy import WaypointApp
from trustusbank.mesh.waypoint.routes import WaypointConfig
from trustusbank.mesh.waypoint.telemetry import WaypointLog, WaypointMetrics

GATEWAY = "shop/wp"
CALLER = SpiffeId("cluster.local", "agents", "support-bot")
MODEL = ScriptedModel().model

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec:
  gatewayClassName: agentgateway-waypoint
  listeners:
    - {name: http, port: 8080, protocol: HTTP}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: model, namespace: shop}
spec:
  ai:
    provider:
      openai: {model: MODEL_OVERRIDE}
      host: 127.0.0.1
      port: MODEL_PORT
      pathPrefix: /v1
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: llm, namespace: shop}
spec:
  parentRefs: [{name: wp}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /llm/openai}}]
      backendRefs: [{group: agentgateway.dev, kind: AgentgatewayBackend, name: model}]
"""


def manifests(directory: Path, text: str) -> list[Manifest]:
    """Through the whole manifest check, as `trustusbank apply` would load them."""
    (directory / "bundle.yaml").write_text(text)
    return load_bundle(directory).objects


# --- the provider's paths and the request as agentgateway prepares it -------------------------------


@pytest.mark.parametrize(
    ("provider", "path", "upstream"),
    [
        (LlmProvider("m", 80, path_prefix="/v1"), "/llm/openai/v1/chat/completions", "/v1/chat/completions"),
        (LlmProvider("m", 80, path_prefix="/api/v2/"), "/anything", "/api/v2/chat/completions"),
        (LlmProvider("m", 80, path="/exact"), "/llm/openai/v1/chat/completions", "/exact"),
        (LlmProvider("m", 80), "/llm/openai/v1/chat/completions", "/llm/openai/v1/chat/completions"),
    ],
)
def test_upstream_path_follows_path_then_prefix_then_the_request(
    provider: LlmProvider, path: str, upstream: str
) -> None:
    assert provider.upstream_path(path) == upstream


def test_the_backend_model_replaces_the_requested_one() -> None:
    body = json.dumps({"model": "gpt-4o", "messages": []}).encode()
    prepared = prepare_request(body, LlmProvider("m", 80, model="pinned"))
    assert prepared.model == "pinned"
    assert json.loads(prepared.body)["model"] == "pinned"


def test_an_unchanged_request_goes_upstream_byte_for_byte() -> None:
    body = b'{"model":  "m1", "messages": [], "x": 1}'
    assert prepare_request(body, LlmProvider("m", 80)).body == body


def test_a_stream_without_stream_options_is_asked_for_usage() -> None:
    body = json.dumps({"model": "m1", "messages": [], "stream": True}).encode()
    prepared = prepare_request(body, LlmProvider("m", 80))
    assert prepared.stream
    assert json.loads(prepared.body)["stream_options"] == {"include_usage": True}
    own = json.dumps({"model": "m1", "stream": True, "stream_options": {"include_usage": False}}).encode()
    assert json.loads(prepare_request(own, LlmProvider("m", 80)).body)["stream_options"] == {
        "include_usage": False
    }


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"messages": []}', b'{"model": ""}'])
def test_requests_agentgateway_refuses_are_400(body: bytes) -> None:
    with pytest.raises(LlmRefused) as refused:
        prepare_request(body, LlmProvider("m", 80))
    assert refused.value.status == 400
    assert json.loads(refused.value.body())["error"]["message"] == refused.value.message


def test_usage_is_read_from_a_json_answer_and_from_the_last_sse_event() -> None:
    answer = {"model": "m-2026", "usage": {"prompt_tokens": 12, "completion_tokens": 5}, "choices": []}
    usage = read_usage("application/json", json.dumps(answer).encode())
    assert (usage.response_model, usage.input_tokens, usage.output_tokens) == ("m-2026", 12, 5)
    events = [
        {"model": "m-2026", "choices": [{"delta": {"content": "hi"}}]},
        {"model": "m-2026", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
    ]
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    usage = read_usage("text/event-stream; charset=utf-8", stream.encode())
    assert (usage.response_model, usage.input_tokens, usage.output_tokens) == ("m-2026", 7, 2)


def test_an_unreadable_answer_gives_no_numbers_rather_than_an_error() -> None:
    usage = read_usage("application/json", b"<html>")
    assert (usage.response_model, usage.input_tokens, usage.output_tokens) == (None, None, None)


# --- the CRD's rules, and what the embedded waypoint cannot serve -----------------------------------


def backend(ai: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"ai": ai}}


@pytest.mark.parametrize(
    ("ai", "message"),
    [
        ({"provider": {"openai": {}, "host": "m"}}, "both host and port must be set together"),
        ({"provider": {"openai": {}, "pathPrefix": "/v1"}}, "pathPrefix requires host to be set"),
        (
            {"provider": {"openai": {}, "host": "m", "port": 80, "path": "/a", "pathPrefix": "/b"}},
            "exclusive",
        ),
        ({"provider": {"openai": {}}}, "the embedded waypoint reaches models in the mesh only"),
        ({"provider": {"anthropic": {}, "host": "m", "port": 80}}, "not supported"),
        ({"groups": [{"providers": []}]}, "not supported"),
    ],
)
def test_ai_backends_the_crd_or_the_embedded_waypoint_refuses(ai: dict[str, Any], message: str) -> None:
    errors = check_agentgateway_backend(backend(ai))
    assert any(message in text for _, text in errors), errors


def test_an_openai_backend_with_a_host_in_the_mesh_is_accepted() -> None:
    ai = {"provider": {"openai": {"model": "m"}, "host": "m.ns.svc.cluster.local", "port": 8080}}
    assert check_agentgateway_backend(backend(ai)) == []


# --- end to end: WaypointApp in front of the scripted model ----------------------------------------


@dataclass
class _Pod:
    ip: str = "127.0.0.1"


class _Ingress:
    """Names every connection's peer as the HBONE tunnel would: CALLER, addressed to the gateway."""

    pod = _Pod()

    def caller(self, scope: dict[str, Any]) -> Caller:
        return Caller(CALLER, "127.0.0.1:40000", self.pod.ip, 8080)


@dataclass
class Gateway:
    url: str
    log: Path
    metrics: WaypointMetrics


@pytest.fixture
async def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    override = getattr(request, "param", MODEL)
    async with serving(create_app(ScriptedModel(), served_model_names=[MODEL])) as model_url:
        port = model_url.rsplit(":", 1)[1]
        text = MANIFESTS.replace("MODEL_PORT", port).replace("MODEL_OVERRIDE", override)
        bundle_dir = tmp_path / "bundle"
        bundle_dir.mkdir()
        config = WaypointConfig.from_manifests(manifests(bundle_dir, text), "shop", "wp")
        metrics = WaypointMetrics()
        log_path = tmp_path / "waypoint.jsonl"
        pool = httpcore.AsyncConnectionPool()
        app = WaypointApp(
            GATEWAY,
            lambda: config,
            list,
            _Ingress(),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            pool,
            WaypointLog(log_path, GATEWAY),
            metrics,
            TracerProvider().get_tracer("test"),
        )
        async with serving(app) as url:
            yield Gateway(url, log_path, metrics)
        await pool.aclose()


def log_lines(gateway: Gateway) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gateway.log.read_text().splitlines()]


def token_sum(gateway: Gateway, kind: str) -> float:
    text = generate_latest(gateway.metrics.registry).decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("agentgateway_gen_ai_client_token_usage_sum{")
        and f'gen_ai_token_type="{kind}"' in line
        and CALLER.uri in line
    )


REQUEST = ModelRequest(
    model=MODEL,
    system="You are TrustUsBank's customer support assistant.",
    messages=(Message("user", "I am customer 12345. What is my balance?"),),
    tools=(
        ToolSpec(
            "get_balance",
            "A customer's balance",
            {"type": "object", "properties": {"customer_id": {"type": "string"}}},
        ),
    ),
)


async def test_a_chat_completion_through_the_gateway_is_logged_with_its_model_and_tokens(
    gateway: Gateway,
) -> None:
    client = OpenAIChatClient(model=MODEL, base_url=f"{gateway.url}/llm/openai/v1", api_key=None)
    try:
        reply = await client.complete(REQUEST)
    finally:
        await client.aclose()
    assert [c.name for c in reply.tool_calls] == ["get_balance"]

    [line] = log_lines(gateway)
    assert line["src.identity"] == CALLER.uri
    assert line["route"] == "shop/llm"
    assert line["backend"] == "shop/model"
    assert line["http.status"] == 200
    assert line["gen_ai.operation.name"] == "chat"
    assert line["gen_ai.provider.name"] == "openai"
    assert line["gen_ai.request.model"] == MODEL
    assert line["gen_ai.response.model"] == reply.model
    assert line["gen_ai.usage.input_tokens"] == reply.usage.input_tokens > 0
    assert line["gen_ai.usage.output_tokens"] == reply.usage.output_tokens > 0
    assert token_sum(gateway, "input") == reply.usage.input_tokens
    assert token_sum(gateway, "output") == reply.usage.output_tokens


async def test_a_streamed_answer_is_relayed_and_its_usage_counted(gateway: Gateway) -> None:
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "What is my balance?"}]}
    async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
        response = await http.post(f"{gateway.url}/llm/openai/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    usage = read_usage("text/event-stream", response.content)
    assert usage.input_tokens is not None, "the gateway asked for usage on the client's behalf"
    [line] = log_lines(gateway)
    assert line["gen_ai.usage.input_tokens"] == usage.input_tokens
    assert line["gen_ai.usage.output_tokens"] == usage.output_tokens


@pytest.mark.parametrize("gateway", ["no-such-model"], indirect=True)
async def test_the_backend_model_override_is_what_the_provider_sees(gateway: Gateway) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
        response = await http.post(f"{gateway.url}/llm/openai/v1/chat/completions", json=body)
    assert response.status_code == 404  # the scripted model serves only MODEL
    assert "no-such-model" in response.text
    [line] = log_lines(gateway)
    assert line["gen_ai.request.model"] == "no-such-model"
    assert "gen_ai.usage.input_tokens" not in line


async def test_a_body_without_a_model_is_refused_at_the_gateway(gateway: Gateway) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
        response = await http.post(f"{gateway.url}/llm/openai/v1/chat/completions", content=b"[]")
    assert response.status_code == 400
    [line] = log_lines(gateway)
    assert line["decision"] == "deny"
    assert line["reason"].startswith("llm refused")
