"""A `ModelClient` for OpenAI Chat Completions and the servers that copy it (Ollama, vLLM, ours).

The client is bound to one ModelConfig: its model, max_tokens and temperature
apply to every request, whatever the agent loop put in `ModelRequest`. It uses
one `httpx.AsyncClient` that trusts the environment, so a pod's `ALL_PROXY`
sends model traffic through the mesh like any other egress.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import httpx

from trustusbank.agents.model.types import ModelReply, ModelRequest
from trustusbank.agents.model.wire import openai as wire
from trustusbank.agents.model.wire.http import post_json
from trustusbank.http_server import client_limits

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_HOST = "api.openai.com"


def is_openai_proper(base_url: str) -> bool:
    """True for OpenAI's own API, where a key is required and `max_completion_tokens` is the field."""
    return (urlsplit(base_url).hostname or "").lower() == OPENAI_HOST


class OpenAIChatClient:
    provider = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        timeout: float = 60.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout, limits=client_limits())

    def _body(self, request: ModelRequest) -> dict[str, object]:
        request = dataclasses.replace(
            request,
            model=self.model,
            max_tokens=self.max_tokens,
            temperature=self.temperature if self.temperature is not None else request.temperature,
        )
        body = wire.request_to_wire(request)
        if is_openai_proper(self.base_url):
            # OpenAI's newer models reject the deprecated max_tokens; compatible servers know only it.
            body["max_completion_tokens"] = body.pop("max_tokens")
        return body

    async def complete(self, request: ModelRequest) -> ModelReply:
        body = await post_json(
            self._http, self.url, self._body(request), self._headers, error_message=wire.error_message
        )
        return wire.reply_from_wire(body)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
