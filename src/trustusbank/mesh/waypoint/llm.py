"""The waypoint as an LLM gateway: an `AgentgatewayBackend` with `spec.ai`, OpenAI chat completions.

Why the agents' model calls should cross the waypoint at all: it is the one place that
sees every agent's model traffic with the caller's verified identity, so token use and
model names become evidence per workload, as tool calls already are.

What follows agentgateway (its `AIBackend`/`LLMProvider` CRD types and `llm` crate):
the provider is `openai`; `host` and `port` override api.openai.com:443 (and with an
override, no TLS is added: in the mesh HBONE carries the bytes); the upstream path is
`path` if set, else `pathPrefix` + `/chat/completions`, else, with a host override and no
prefix, the request's own path; `openai.model` replaces the request's `model`; a
streaming request without `stream_options` gets `include_usage: true` so the last
event carries the token counts; a body that is not a JSON object, or names no model, is
refused with 400. The response is relayed as it is; its `model` and `usage` become the
log fields and span attributes `gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, and the
`agentgateway_gen_ai_client_token_usage` histogram. The subset: one provider (no
priority groups), OpenAI's wire only, no guardrails, no token-based rate limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustusbank.errors import RefusedError
from trustusbank.manifests.gateway.objects import LlmProvider

OPERATION_CHAT = "chat"

# Log fields and span attributes, as agentgateway names them (OTel GenAI semantic conventions).
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"


class LlmRefused(RefusedError):
    """A request the gateway will not send upstream; `status` is what the caller gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> bytes:
        """OpenAI's error shape, so an OpenAI client reports the message as it is."""
        error = {"message": self.message, "type": "invalid_request_error", "code": None}
        return json.dumps({"error": error}).encode()


@dataclass(frozen=True)
class LlmRequest:
    body: bytes
    """What goes upstream: the client's bytes, or re-encoded when the gateway changed a field."""
    model: str
    stream: bool


@dataclass(frozen=True)
class LlmUsage:
    response_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


def prepare_request(body: bytes, provider: LlmProvider) -> LlmRequest:
    """The chat completion to send upstream, or `LlmRefused` (400) for one agentgateway would refuse."""
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise LlmRefused(400, f"request body is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise LlmRefused(400, "request must be an object")
    changed = False
    if provider.model is not None and request.get("model") != provider.model:
        request["model"] = provider.model
        changed = True
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise LlmRefused(400, "model not specified")
    stream = request.get("stream") is True
    if stream and request.get("stream_options") is None:
        request["stream_options"] = {"include_usage": True}
        changed = True
    return LlmRequest(json.dumps(request).encode() if changed else body, model, stream)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _from_object(body: Mapping[str, Any], into: dict[str, Any]) -> None:
    if isinstance(body.get("model"), str):
        into["model"] = body["model"]
    usage = body.get("usage")
    if isinstance(usage, Mapping):
        into["input"] = _int(usage.get("prompt_tokens"))
        into["output"] = _int(usage.get("completion_tokens"))


def read_usage(content_type: str, body: bytes) -> LlmUsage:
    """The response's model and token counts, from a JSON answer or an SSE stream; None where absent.

    Never raises: the answer has already gone to the client, and a response the gateway
    cannot read is logged without numbers rather than turned into an error.
    """
    found: dict[str, Any] = {}
    try:
        if content_type.split(";", 1)[0].strip().lower() == "text/event-stream":
            for line in body.decode("utf-8", "replace").splitlines():
                data = line[5:].strip() if line.startswith("data:") else ""
                if not data or data == "[DONE]":
                    continue
                chunk = json.loads(data)
                if isinstance(chunk, dict):
                    _from_object(chunk, found)
        else:
            answer = json.loads(body)
            if isinstance(answer, dict):
                _from_object(answer, found)
    except ValueError:
        pass
    return LlmUsage(found.get("model"), found.get("input"), found.get("output"))


def log_fields(provider: LlmProvider, request_model: str, usage: LlmUsage | None) -> dict[str, Any]:
    """The gen_ai.* fields of one request's log line (and span), agentgateway's names."""
    fields: dict[str, Any] = {
        OPERATION_NAME: OPERATION_CHAT,
        PROVIDER_NAME: provider.provider,
        REQUEST_MODEL: request_model,
    }
    if usage is not None:
        fields[RESPONSE_MODEL] = usage.response_model
        fields[INPUT_TOKENS] = usage.input_tokens
        fields[OUTPUT_TOKENS] = usage.output_tokens
    return fields
