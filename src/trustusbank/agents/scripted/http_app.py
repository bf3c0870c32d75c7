"""The scripted model served on the real model wires: OpenAI Chat Completions and Anthropic Messages.

Agents reach it the way they reach a provider (same client, same wire, through
the mesh), so the only thing simulated is the model's judgement. It is a local
simulation and says so: API keys (`Authorization: Bearer`, `x-api-key`) are
accepted and ignored, every response carries `x-trustusbank-simulation:
scripted`, OpenAI replies carry `system_fingerprint:
"trustusbank-scripted-simulation"`, and the reply's `model` echoes the request's.

Routes, with or without the `/v1` prefix: `POST /chat/completions`, `POST
/messages` (both stream when asked), `GET /models` (OpenAI's list shape, or
Anthropic's when the request sends `anthropic-version`), and `GET /healthz`.
Errors use each provider's own body and status.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from trustusbank.agents.model.types import ModelClient, ModelReply, ModelRequest
from trustusbank.agents.model.wire import WireError, sse
from trustusbank.agents.model.wire import anthropic as anthropic_wire
from trustusbank.agents.model.wire import openai as openai_wire

log = logging.getLogger(__name__)

SIMULATION_HEADER = "x-trustusbank-simulation"
FINGERPRINT = "trustusbank-scripted-simulation"
_HEADERS = {SIMULATION_HEADER: "scripted"}
_SSE_HEADERS = {**_HEADERS, "cache-control": "no-cache"}


@dataclass(frozen=True)
class _Dialect:
    """What differs between the two wires, for the one request/reply exchange they share."""

    parse: Callable[[Any], tuple[ModelRequest, bool]]
    error: Callable[[int, str, str], dict[str, Any]]  # (status, kind, message) -> body
    reply: Callable[[ModelReply], dict[str, Any]]
    stream: Callable[[ModelReply, Any], Iterable[bytes]]  # (reply, request body) -> SSE bytes
    id_prefix: str
    invalid: str  # the error kind for a bad request
    not_found: str  # the error kind for an unknown model
    server_error: str


def _openai_error(status: int, kind: str, message: str) -> dict[str, Any]:
    return openai_wire.error_to_wire(message, kind, "model_not_found" if status == 404 else None)


def _openai_reply(reply: ModelReply) -> dict[str, Any]:
    return {**openai_wire.reply_to_wire(reply), "system_fingerprint": FINGERPRINT}


def _openai_stream(reply: ModelReply, body: Any) -> Iterable[bytes]:
    options = body.get("stream_options") if isinstance(body, dict) else None
    with_usage = isinstance(options, dict) and options.get("include_usage") is True
    for chunk in openai_wire.reply_to_stream(reply):
        if chunk["choices"] or with_usage:  # the usage-only chunk is sent only when asked for
            yield sse.encode({**chunk, "system_fingerprint": FINGERPRINT})
    yield sse.encode("[DONE]")


def _anthropic_stream(reply: ModelReply, body: Any) -> Iterable[bytes]:
    for event, data in anthropic_wire.reply_to_stream(reply):
        yield sse.encode(data, event)


OPENAI = _Dialect(
    parse=openai_wire.request_from_wire,
    error=_openai_error,
    reply=_openai_reply,
    stream=_openai_stream,
    id_prefix="chatcmpl-scripted-",
    invalid="invalid_request_error",
    not_found="invalid_request_error",
    server_error="server_error",
)
ANTHROPIC = _Dialect(
    parse=anthropic_wire.request_from_wire,
    error=lambda status, kind, message: anthropic_wire.error_to_wire(message, kind),
    reply=anthropic_wire.reply_to_wire,
    stream=_anthropic_stream,
    id_prefix="msg_scripted_",
    invalid="invalid_request_error",
    not_found="not_found_error",
    server_error="api_error",
)


def create_app(model: ModelClient, *, served_model_names: Sequence[str]) -> Starlette:
    """Serve `model` on both wires. An empty `served_model_names` accepts any model name."""
    served = tuple(served_model_names)

    def fail(dialect: _Dialect, status: int, kind: str, message: str) -> JSONResponse:
        return JSONResponse(dialect.error(status, kind, message), status_code=status, headers=_HEADERS)

    async def exchange(request: Request, dialect: _Dialect) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return fail(dialect, 400, dialect.invalid, "the request body is not valid JSON")
        try:
            neutral, stream = dialect.parse(body)
        except WireError as exc:
            return fail(dialect, 400, dialect.invalid, str(exc))
        if served and neutral.model not in served:
            names = ", ".join(served)
            message = f"The model `{neutral.model}` does not exist here (this simulation serves {names})."
            return fail(dialect, 404, dialect.not_found, message)
        try:
            reply = await model.complete(neutral)
        except Exception as exc:
            log.exception("the scripted model failed on a request for %s", neutral.model)
            return fail(dialect, 500, dialect.server_error, f"the scripted model failed: {exc}")
        reply = dataclasses.replace(
            reply,
            model=neutral.model,
            response_id=reply.response_id or dialect.id_prefix + uuid.uuid4().hex[:24],
        )
        if stream:
            events = list(dialect.stream(reply, body))

            async def send() -> AsyncIterator[bytes]:
                for event in events:
                    yield event

            return StreamingResponse(send(), media_type="text/event-stream", headers=_SSE_HEADERS)
        return JSONResponse(dialect.reply(reply), headers=_HEADERS)

    async def chat_completions(request: Request) -> Response:
        return await exchange(request, OPENAI)

    async def messages(request: Request) -> Response:
        return await exchange(request, ANTHROPIC)

    async def models(request: Request) -> JSONResponse:
        data: list[dict[str, Any]]
        if "anthropic-version" in request.headers:
            data = [
                {"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"}
                for n in served
            ]
            first, last = (served[0], served[-1]) if served else (None, None)
            body: dict[str, Any] = {"data": data, "has_more": False, "first_id": first, "last_id": last}
        else:
            data = [{"id": n, "object": "model", "created": 0, "owned_by": FINGERPRINT} for n in served]
            body = {"object": "list", "data": data}
        return JSONResponse(body, headers=_HEADERS)

    async def healthz(_: Request) -> JSONResponse:
        body = {"status": "ok", "simulation": True, "models": list(served), "wires": ["openai", "anthropic"]}
        return JSONResponse(body, headers=_HEADERS)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await model.aclose()

    routes = [Route("/healthz", healthz, methods=["GET"])]
    for prefix in ("/v1", ""):
        routes += [
            Route(f"{prefix}/chat/completions", chat_completions, methods=["POST"]),
            Route(f"{prefix}/messages", messages, methods=["POST"]),
            Route(f"{prefix}/models", models, methods=["GET"]),
        ]
    return Starlette(routes=routes, lifespan=lifespan)
