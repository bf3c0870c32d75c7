"""`/api/a2a/<ns>/<agent>/...`: the chatbot's reverse proxy to the bank's agents.

The browser cannot reach an agent, and must not: every call to an agent leaves
the chatbot's pod, so the mesh sees the chatbot's identity and the agent's
AccessPolicy decides on it. The upstream client honours `ALL_PROXY` (the pod's
node proxy) for that reason. Answers pass through as they are (status, body,
SSE events as they arrive); only the agent card is rewritten, so a client that
fetched it here keeps talking through here. Anything the proxy itself refuses or
fails at is a JSON error, never a page that could echo what the caller sent.

It is the public front door, so it reaches agents and nothing else: only the
`<namespace>/<name>` pairs it was given (the kagent Agents the manifests declare;
a Service name and port would otherwise make it a way into any pod the chatbot's
identity may reach), and on them only A2A: the card (GET) and the JSON-RPC endpoint
(POST to the agent's base). An agent's /metrics or /healthz is not for the public.
Headers that claim who the caller is are dropped: the agent judges the mesh's word.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from urllib.parse import quote

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from trustusbank.workloads.chatbot.card import CARD_PATHS, rewrite_card
from trustusbank.workloads.chatbot.names import is_dns_label

log = logging.getLogger(__name__)

AgentsUrl = Callable[[str, str], str]  # (namespace, agent) -> the agent's base URL

MAX_REQUEST_BODY = 4 * 1024 * 1024
MAX_CARD_BODY = 1024 * 1024
UPSTREAM_TIMEOUT = httpx.Timeout(10.0, read=300.0)  # an agent's turn may run many tool calls

# RFC 9110 7.6.1 hop-by-hop fields, plus what the client library sets for the new hop itself.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
# What a browser could write to claim an address or identity it does not have.
CLAIMS = {"forwarded", "x-real-ip", "x-client-ip", "true-client-ip", "x-forwarded-client-cert"}
CLAIM_PREFIXES = ("x-forwarded-", "x-spiffe", "x-client-")
# A2A as a2a-sdk's clients speak it through here: the card, and JSON-RPC at the agent's base.
A2A_ENDPOINTS = {("GET", rest) for rest in CARD_PATHS} | {("POST", "")}
# Whatever an agent answers is served under the chatbot's origin: never let a browser run it.
SAFE_RESPONSE_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
}


def default_agents_url(namespace: str, agent: str) -> str:
    return f"http://{agent}.{namespace}.svc.cluster.local:8080/"


def error(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=SAFE_RESPONSE_HEADERS)


def _forward_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The caller's headers minus hop-by-hop ones (and any the Connection header names), and
    minus any that claim an address or identity (X-Forwarded-*, Forwarded, X-Real-IP, XFCC...).

    `traceparent`/`tracestate` pass, so the agent's spans join the caller's trace.
    Encoding is pinned to identity: the body is relayed byte for byte, and the card
    has to be read.
    """
    decoded = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in headers]
    named = {
        token.strip().lower() for key, value in decoded if key == "connection" for token in value.split(",")
    }
    drop = HOP_BY_HOP | named | CLAIMS | {"accept-encoding"}
    kept = [(k, v) for k, v in decoded if k not in drop and not k.startswith(CLAIM_PREFIXES)]
    return [*kept, ("accept-encoding", "identity")]


def _response_headers(headers: httpx.Headers) -> dict[str, str]:
    named = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    drop = HOP_BY_HOP | named  # content-length too: the server frames what it relays itself
    out = {k: v for k, v in headers.items() if k.lower() not in drop}
    out.update(SAFE_RESPONSE_HEADERS)
    if headers.get("content-type", "").startswith("text/event-stream"):
        out["x-accel-buffering"] = "no"  # and tell any proxy in front of us not to buffer either
    return out


async def _read_limited(request: Request, limit: int) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


class A2AProxy:
    def __init__(
        self, agents_url: AgentsUrl, http: httpx.AsyncClient, agents: Iterable[tuple[str, str]]
    ) -> None:
        """`agents`: the (namespace, name) pairs this proxy may reach; nothing else is."""
        self.agents_url = agents_url
        self.http = http
        self.agents = frozenset(agents)

    async def handle(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        agent = request.path_params["agent"]
        rest = request.path_params.get("rest", "")
        # Names are checked before they go near a URL: they become a host name upstream.
        if not is_dns_label(namespace):
            return error(400, "namespace is not a DNS-1123 label")
        if not is_dns_label(agent):
            return error(400, "agent is not a DNS-1123 label")
        if any(segment in (".", "..") for segment in rest.split("/")):
            return error(400, "path must not contain '.' or '..' segments")
        name = f"{namespace}/{agent}"
        if (namespace, agent) not in self.agents:
            log.warning("refused %s %s: not an agent this proxy reaches", request.method, name)
            return error(403, "the chatbot reaches only the agents it is configured for")
        if (request.method, rest) not in A2A_ENDPOINTS:
            log.warning("refused %s on %s: not an A2A endpoint", request.method, name)
            return error(404, "not an A2A endpoint: the agent card (GET) or JSON-RPC (POST to the base)")
        base = self.agents_url(namespace, agent)
        url = base.rstrip("/") + "/" + quote(rest, safe="/-._~!$&'()*+,;=:@")
        if request.url.query:
            url += "?" + request.url.query

        body: bytes | None = None
        if request.method == "POST":
            body = await _read_limited(request, MAX_REQUEST_BODY)
            if body is None:
                return error(413, f"request body over {MAX_REQUEST_BODY} bytes")
        headers = _forward_headers(request.headers.raw)
        is_card = request.method == "GET" and rest in CARD_PATHS
        if is_card:  # validators the caller holds name our rewritten card, not the agent's
            headers = [(k, v) for k, v in headers if k not in ("if-none-match", "if-modified-since")]
        upstream = self.http.build_request(request.method, url, headers=headers, content=body)
        try:
            response = await self.http.send(upstream, stream=True)
        except httpx.TimeoutException as exc:
            log.warning("agent %s timed out: %s", name, exc)
            return error(504, f"agent {name} did not answer in time", agent=name)
        except httpx.TransportError as exc:
            log.warning("agent %s unreachable at %s: %s", name, base, exc)
            return error(502, f"agent {name} is unreachable: {exc or type(exc).__name__}", agent=name)

        if is_card and response.status_code == 200:
            public = f"{str(request.base_url).rstrip('/')}/api/a2a/{namespace}/{agent}/"
            return await self._card(response, name, base, public)
        return StreamingResponse(
            _relay(response, name),
            status_code=response.status_code,
            headers=_response_headers(response.headers),
            background=BackgroundTask(response.aclose),
        )

    async def _card(self, response: httpx.Response, name: str, base: str, public: str) -> Response:
        """The card with its interfaces pointed here; a card we cannot read is not passed on."""
        try:
            raw = bytearray()
            async for chunk in response.aiter_bytes():  # decoded, should it come compressed anyway
                raw += chunk
                if len(raw) > MAX_CARD_BODY:
                    return error(502, f"agent {name} sent an agent card over {MAX_CARD_BODY} bytes")
            card = json.loads(raw)
            if not isinstance(card, dict):
                raise ValueError("not a JSON object")
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("agent %s sent an unreadable agent card: %s", name, exc)
            return error(502, f"agent {name} sent an unreadable agent card", agent=name)
        finally:
            await response.aclose()
        headers = _response_headers(response.headers)
        for stale in ("etag", "content-encoding", "content-type"):  # they describe the upstream body
            headers.pop(stale, None)
        return JSONResponse(rewrite_card(card, base, public), headers=headers)


async def _relay(response: httpx.Response, name: str) -> AsyncIterator[bytes]:
    """The upstream body as it arrives; a break mid-stream ends ours (status is already sent)."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        log.warning("stream from agent %s broke: %s", name, exc)
