"""Local fakes of the OpenAI and Anthropic HTTP APIs that enforce the request rules the real ones do.

Each fake checks what the real API would refuse (auth and version headers, required
fields, unknown fields, tool results that do not answer the preceding calls) and
answers a violation with the provider's own 400 body, so a client bug shows up as
the error a real provider would give. Valid requests get the next queued answer,
shaped like the real API's, including fields our parser does not use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class Refused(Exception):
    """The request breaks a rule of the real API."""


def require(condition: object, message: str) -> None:
    if not condition:
        raise Refused(message)


@dataclass
class Fake:
    api_key: str | None
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    answers: list[tuple[int, Any]] = field(default_factory=list)  # (status, JSON body or raw bytes)

    def answer(self, status: int, body: Any) -> None:
        self.answers.append((status, body))

    def respond(self) -> Response:
        status, body = self.answers.pop(0)
        if isinstance(body, bytes):
            return Response(body, status_code=status, media_type="application/json")
        return JSONResponse(body, status_code=status)

    @property
    def last_body(self) -> Any:
        return self.requests[-1][1]

    @property
    def last_headers(self) -> dict[str, str]:
        return self.requests[-1][0]


# -- OpenAI ---------------------------------------------------------------------------------------

OPENAI_FIELDS = {
    "model", "messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "stream", "stream_options", "n", "stop", "parallel_tool_calls", "user", "seed",
}  # fmt: skip


def openai_error(
    message: str, kind: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def check_openai(body: Any) -> None:
    require(isinstance(body, dict), "body must be an object")
    unknown = set(body) - OPENAI_FIELDS
    require(not unknown, f"Unrecognized request argument supplied: {', '.join(sorted(unknown))}")
    require(isinstance(body.get("model"), str) and body["model"], "you must provide a model parameter")
    require(
        not ("max_tokens" in body and "max_completion_tokens" in body), "max_tokens and max_completion_tokens"
    )
    messages = body.get("messages")
    require(isinstance(messages, list) and messages, "'messages' must be a non-empty array")
    pending: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        require(role in {"system", "developer", "user", "assistant", "tool"}, f"messages[{i}].role: {role!r}")
        if role != "tool":
            require(
                not pending, f"messages[{i}]: tool_calls {sorted(pending)} were not answered by tool messages"
            )
        content = m.get("content")
        require(content is None or isinstance(content, str | list), f"messages[{i}].content: wrong type")
        if role == "assistant":
            require(content is not None or m.get("tool_calls"), f"messages[{i}]: content or tool_calls")
            for call in m.get("tool_calls") or []:
                require(call.get("type") == "function", f"messages[{i}]: tool call type")
                require(isinstance(call.get("id"), str), f"messages[{i}]: tool call id")
                require(TOOL_NAME.match(call["function"]["name"]), f"messages[{i}]: tool call name")
                arguments = call["function"]["arguments"]
                require(isinstance(arguments, str), f"messages[{i}]: arguments must be a JSON string")
                require(
                    isinstance(json.loads(arguments), dict), f"messages[{i}]: arguments must be an object"
                )
                pending.add(call["id"])
        elif role == "tool":
            require(
                m.get("tool_call_id") in pending,
                f"messages[{i}]: messages with role 'tool' must be a response to a preceding message with "
                f"'tool_calls'",
            )
            require(isinstance(content, str | list), f"messages[{i}].content: required")
            pending.discard(m["tool_call_id"])
        else:
            require(content is not None, f"messages[{i}].content: required")
    for i, tool in enumerate(body.get("tools") or []):
        require(tool.get("type") == "function", f"tools[{i}].type")
        require(TOOL_NAME.match(tool["function"].get("name", "")), f"tools[{i}].function.name")
        require(isinstance(tool["function"].get("parameters", {}), dict), f"tools[{i}].function.parameters")


def openai_app(fake: Fake) -> Starlette:
    async def chat_completions(request: Request) -> Response:
        headers = dict(request.headers)
        body = json.loads(await request.body())
        fake.requests.append((headers, body))
        if fake.api_key is not None and headers.get("authorization") != f"Bearer {fake.api_key}":
            message = "Incorrect API key provided. You can find your API key at https://platform.openai.com."
            return JSONResponse(openai_error(message, code="invalid_api_key"), status_code=401)
        if not headers.get("content-type", "").startswith("application/json"):
            return JSONResponse(openai_error("expected application/json"), status_code=400)
        try:
            check_openai(body)
        except Refused as exc:
            return JSONResponse(openai_error(str(exc)), status_code=400)
        return fake.respond()

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


def openai_completion(
    message: dict[str, Any], finish: str, model: str = "gpt-4o-mini-2024-07-18"
) -> dict[str, Any]:
    """A reply as OpenAI sends it, with the fields we do not read."""
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"refusal": None, "annotations": [], **message},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


# -- Anthropic ------------------------------------------------------------------------------------

ANTHROPIC_FIELDS = {
    "model", "messages", "max_tokens", "system", "tools", "tool_choice", "temperature", "top_p", "top_k",
    "stream", "stop_sequences", "metadata", "thinking",
}  # fmt: skip


def anthropic_error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def check_anthropic(body: Any) -> None:
    require(isinstance(body, dict), "body must be an object")
    unknown = set(body) - ANTHROPIC_FIELDS
    require(not unknown, f"{', '.join(sorted(unknown))}: Extra inputs are not permitted")
    require(isinstance(body.get("model"), str) and body["model"], "model: Field required")
    require(isinstance(body.get("max_tokens"), int) and body["max_tokens"] >= 1, "max_tokens: Field required")
    system = body.get("system", "")
    require(isinstance(system, str | list), "system: Input should be a valid string or list")
    messages = body.get("messages")
    require(isinstance(messages, list) and messages, "messages: at least one message is required")
    require(messages[0]["role"] == "user", "messages.0.role: the first message must use the user role")
    expected: list[str] = []  # tool_use ids the next message must answer
    for i, m in enumerate(messages):
        role = m.get("role")
        require(role in {"user", "assistant"}, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        blocks = _blocks(m.get("content"))
        require(isinstance(blocks, list), f"messages.{i}.content: Input should be a valid list")
        results = [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]
        if expected:
            require(
                role == "user" and set(expected) <= set(results),
                f"messages.{i}: tool_use ids were found without tool_result blocks immediately after: "
                f"{', '.join(expected)}. Each tool_use block must have a corresponding tool_result block "
                f"in the next message.",
            )
            kinds = [b["type"] for b in blocks]
            require(
                kinds[: len(results)] == ["tool_result"] * len(results), f"messages.{i}: tool_result first"
            )
        else:
            require(
                not results, f"messages.{i}: unexpected tool_use_id found in tool_result blocks: {results}"
            )
        expected = []
        for j, b in enumerate(blocks):
            kind = b.get("type")
            if role == "assistant":
                require(kind in {"text", "tool_use", "thinking"}, f"messages.{i}.content.{j}.type: {kind}")
            else:
                require(kind in {"text", "tool_result", "image"}, f"messages.{i}.content.{j}.type: {kind}")
            if kind == "text":
                require(b.get("text"), f"messages.{i}.content.{j}: text content blocks must be non-empty")
            if kind == "tool_use":
                require(
                    isinstance(b.get("input"), dict), f"messages.{i}.content.{j}.input: must be an object"
                )
                require(TOOL_NAME.match(b.get("name", "")), f"messages.{i}.content.{j}.name")
                expected.append(b["id"])
            if kind == "tool_result":
                require(isinstance(b.get("content", ""), str | list), f"messages.{i}.content.{j}.content")
                require(isinstance(b.get("is_error", False), bool), f"messages.{i}.content.{j}.is_error")
    for i, tool in enumerate(body.get("tools") or []):
        require(TOOL_NAME.match(tool.get("name", "")), f"tools.{i}.name: String should match pattern")
        require(isinstance(tool.get("input_schema"), dict), f"tools.{i}.input_schema: Field required")
        require(
            set(tool) <= {"name", "description", "input_schema"}, f"tools.{i}: Extra inputs are not permitted"
        )


def anthropic_app(fake: Fake) -> Starlette:
    async def messages(request: Request) -> Response:
        headers = dict(request.headers)
        body = json.loads(await request.body())
        fake.requests.append((headers, body))
        if headers.get("x-api-key") != fake.api_key:
            return JSONResponse(anthropic_error("invalid x-api-key", "authentication_error"), status_code=401)
        if headers.get("anthropic-version") != "2023-06-01":
            message = (
                "anthropic-version: header is required"
                if "anthropic-version" not in headers
                else "bad version"
            )
            return JSONResponse(anthropic_error(message), status_code=400)
        try:
            check_anthropic(body)
        except Refused as exc:
            return JSONResponse(anthropic_error(str(exc)), status_code=400)
        return fake.respond()

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


def anthropic_message(
    content: list[dict[str, Any]], stop: str, model: str = "claude-sonnet-4-5-20250929"
) -> dict[str, Any]:
    """A reply as Anthropic sends it, with the fields we do not read."""
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2095,
            "output_tokens": 503,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }
