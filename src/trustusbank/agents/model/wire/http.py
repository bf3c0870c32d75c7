"""The one HTTP exchange both model clients make: POST JSON, get JSON back, or a `ModelError`.

Every failure names the URL and what went wrong in words an operator can act on
(HTTP status plus the provider's own error message, unreachable host, timeout,
a body that is not JSON), because the agent surfaces these as task failures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from trustusbank.agents.model.types import ModelError
from trustusbank.telemetry.tracing import inject


async def post_json(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    headers: Mapping[str, str],
    *,
    error_message: Callable[[Any], str],
) -> Any:
    """POST `body` to `url`; the decoded JSON reply. `error_message` reads the provider's error body.

    The W3C trace context of the calling span goes along, so an LLM gateway on the way (the
    waypoint, in the egress-llm demo) joins the agent's `chat` span.
    """
    try:
        response = await http.post(url, json=body, headers={**inject(), **headers})
    except httpx.TimeoutException as exc:
        raise ModelError(f"no answer from {url} in time ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise ModelError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        try:
            detail = error_message(response.json())
        except ValueError:
            detail = response.text[:500] or response.reason_phrase
        raise ModelError(f"{url} answered HTTP {response.status_code}: {detail}")
    try:
        return response.json()
    except ValueError as exc:
        raise ModelError(
            f"{url} answered HTTP {response.status_code} with a body that is not JSON: "
            f"{response.text[:200]!r}"
        ) from exc
