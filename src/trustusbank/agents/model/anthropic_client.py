"""A `ModelClient` for Anthropic Messages.

Like the OpenAI client it is bound to one ModelConfig (model, max_tokens and
temperature apply to every request) and its httpx client trusts the
environment, so `ALL_PROXY` routes it through the mesh. `base_url` follows the
Anthropic SDK: the host, without `/v1`.
"""

from __future__ import annotations

import dataclasses

import httpx

from trustusbank.agents.model.types import ModelConfigError, ModelReply, ModelRequest
from trustusbank.agents.model.wire import anthropic as wire
from trustusbank.agents.model.wire.http import post_json
from trustusbank.http_server import client_limits

ANTHROPIC_BASE_URL = "https://api.anthropic.com"


class AnthropicClient:
    provider = "anthropic"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str = ANTHROPIC_BASE_URL,
        max_tokens: int = 1024,
        temperature: float | None = None,
        timeout: float = 60.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not api_key:
            # Without a key the API closes the request; say so now rather than on the first call.
            raise ModelConfigError(f"AnthropicClient for {model}: no API key")
        self.model = model
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.url = f"{self.base_url}/v1/messages"
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._headers = {"x-api-key": api_key, "anthropic-version": wire.API_VERSION}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout, limits=client_limits())

    def _body(self, request: ModelRequest) -> dict[str, object]:
        request = dataclasses.replace(
            request,
            model=self.model,
            max_tokens=self.max_tokens,
            temperature=self.temperature if self.temperature is not None else request.temperature,
        )
        return wire.request_to_wire(request)

    async def complete(self, request: ModelRequest) -> ModelReply:
        body = await post_json(
            self._http, self.url, self._body(request), self._headers, error_message=wire.error_message
        )
        return wire.reply_from_wire(body)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
