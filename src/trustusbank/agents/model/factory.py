"""Turn a resolved ModelConfig (`ModelSpec`) into the client that speaks its provider's wire.

Configuration mistakes surface here, at start-up, with the fix in the message:
an Anthropic agent with no API key used to start and then fail every call with
an unexplained `RemoteProtocolError`.

Running against a real provider
-------------------------------
The demo's agents can run on the scripted model, which serves both wires
(`agents/scripted/http_app.py`). To use a real model instead, point the agent's
ModelConfig at the provider and give it a key:

- Anthropic: `provider: Anthropic`, `model: <a Claude model id>`,
  `apiKeySecret: <secret>`, `apiKeySecretKey: ANTHROPIC_API_KEY`. Optional
  `anthropic.baseUrl` (host only, no `/v1`) for a gateway in front of the API.
- OpenAI: `provider: OpenAI`, `model: <model id>`, `apiKeySecret`/`apiKeySecretKey`
  as above with `OPENAI_API_KEY`. Leave `openAI.baseUrl` unset for api.openai.com.
- Any OpenAI-compatible server (Ollama, vLLM, LiteLLM): `provider: OpenAI`,
  `openAI.baseUrl: http://<host>:<port>/v1`; a key is optional.

The key comes from the Secret on a cluster
(`kubectl create secret generic <secret> -n <namespace> --from-literal=<KEY>=...`)
and, in the embedded cluster, from the environment variable named by
`apiKeySecretKey` (`export <KEY>=...` before `trustusbank up`). Model traffic
leaves through the mesh like all egress, so the egress policy must allow the
provider's host.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from trustusbank.agents.model.anthropic_client import ANTHROPIC_BASE_URL, AnthropicClient
from trustusbank.agents.model.openai_client import OPENAI_BASE_URL, OpenAIChatClient, is_openai_proper
from trustusbank.agents.model.types import ModelClient, ModelConfigError
from trustusbank.env import ANTHROPIC_API_KEY
from trustusbank.manifests.kagent.spec import ModelSpec

_DEFAULT_KEY_NAME = {"anthropic": ANTHROPIC_API_KEY.name, "openai": "OPENAI_API_KEY"}
_PROVIDER_KIND = {"anthropic": "Anthropic", "openai": "OpenAI"}


@dataclass(frozen=True)
class _Resolved:
    base_url: str
    api_key: str | None


def _api_key(spec: ModelSpec, env: Mapping[str, str]) -> str | None:
    # Secrets written from files often end in a newline, which is not valid in a header.
    if spec.api_key and spec.api_key.strip():
        return spec.api_key.strip()
    if spec.api_key_secret_key:
        value = env.get(spec.api_key_secret_key, "").strip()
        return value or None
    return None


def _missing_key(spec: ModelSpec, why: str) -> ModelConfigError:
    namespace = spec.config.split("/", 1)[0] if "/" in spec.config else "<namespace>"
    key = spec.api_key_secret_key or _DEFAULT_KEY_NAME[spec.provider]
    secret = spec.api_key_secret or "<secret>"
    head = f"ModelConfig {spec.config} (provider {_PROVIDER_KIND[spec.provider]}, model {spec.model})"
    if spec.api_key_secret and spec.api_key_secret_key:
        problem = f"Secret {secret!r} key {key!r} is missing or empty"
        todo = ""
    else:
        problem = "it names no apiKeySecret and apiKeySecretKey"
        todo = f"Set apiKeySecret: {secret} and apiKeySecretKey: {key} on it. "
    return ModelConfigError(
        f"{head} has no API key ({why}): {problem}. {todo}On a cluster: "
        f"`kubectl create secret generic {secret} -n {namespace} --from-literal={key}=<your key>`. "
        f"Embedded: `export {key}=<your key>` before `trustusbank up`."
    )


def _check_url(spec: ModelSpec, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelConfigError(
            f"ModelConfig {spec.config}: base URL {url!r} is not an http(s) URL with a host "
            f"(e.g. http://model.example:8080/v1)"
        )


def _resolve(spec: ModelSpec, env: Mapping[str, str] | None) -> _Resolved:
    if spec.provider not in _PROVIDER_KIND:
        raise ModelConfigError(
            f"ModelConfig {spec.config}: provider {spec.provider!r} is not supported; use Anthropic, or "
            f"OpenAI (with openAI.baseUrl for any OpenAI-compatible server such as Ollama or vLLM)"
        )
    if not spec.model:
        raise ModelConfigError(f"ModelConfig {spec.config}: spec.model is empty; name the model to call")
    key = _api_key(spec, os.environ if env is None else env)
    if spec.provider == "anthropic":
        base_url = spec.base_url or ANTHROPIC_BASE_URL
        _check_url(spec, base_url)
        if key is None:
            raise _missing_key(spec, "the Anthropic API requires one")
        return _Resolved(base_url, key)
    base_url = spec.base_url or OPENAI_BASE_URL
    _check_url(spec, base_url)
    if key is None and is_openai_proper(base_url):
        raise _missing_key(
            spec, "api.openai.com requires one (for an OpenAI-compatible server, set openAI.baseUrl)"
        )
    return _Resolved(base_url, key)


def check_model(spec: ModelSpec, env: Mapping[str, str] | None = None) -> None:
    """Raise `ModelConfigError` if `client_for` would; builds nothing."""
    _resolve(spec, env)


def client_for(spec: ModelSpec, env: Mapping[str, str] | None = None) -> ModelClient:
    """The client for `spec`; the key is `spec.api_key`, else `env[spec.api_key_secret_key]`."""
    resolved = _resolve(spec, env)
    if spec.provider == "anthropic":
        assert resolved.api_key is not None  # _resolve refuses Anthropic without a key
        return AnthropicClient(
            model=spec.model,
            api_key=resolved.api_key,
            base_url=resolved.base_url,
            max_tokens=spec.max_tokens,
            temperature=spec.temperature,
        )
    return OpenAIChatClient(
        model=spec.model,
        base_url=resolved.base_url,
        api_key=resolved.api_key,
        max_tokens=spec.max_tokens,
        temperature=spec.temperature,
    )
