"""A reverse proxy from one of the console's ports to an operator pod, as oauth2-proxy's upstream.

The alerts page (18002), the SOC inbox (18012) and the agent registry (18006) are apps in
pods. The console serves each on its own port through this proxy, so that the front door
stands before them as before the console's own pages: one sign-in for every operator tab.
The pod is found by Deployment and port name in the state directory's topology, re-read
when the file changes, and reached at its app address, as a port-forward reaches it.

What passes: the method, the path and query as sent, the body and the answer as they
stream (an event stream or a long poll is relayed chunk by chunk, and the upstream request
is closed when the browser leaves). What does not: hop-by-hop headers; the door's own
cookies, so no pod can replay a session; `Authorization`, which carries the person's ID
token when the door is on, a credential agents accept and these pods have no use for; any
header claiming who or where the caller is (`X-Forwarded-*`, `X-Auth-Request-*`,
`Forwarded`, `X-Real-IP`). Who is signed in is said again from the door's session
(`scope["user"]`), never from what the browser wrote. An answer cannot set or clear the
door's cookies. A pod that is not there is a 502 page saying why, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from trustusbank.cluster.topology import Topology
from trustusbank.console.signin.frontdoor import DoorConfig, SignedIn
from trustusbank.console.signin.pages import refusal
from trustusbank.errors import UnavailableError
from trustusbank.http_server import client_limits

log = logging.getLogger(__name__)

# RFC 9110 7.6.1 hop-by-hop fields; `host` is the new hop's own (httpx sets it).
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "host",
})  # fmt: skip
CLAIM_PREFIXES = ("x-forwarded-", "x-auth-request-")
CLAIMS = frozenset({"forwarded", "x-real-ip", "authorization"})
DOOR_COOKIE = DoorConfig.cookie_name  # and `<name>_csrf_<state>` while signing in
CONNECT_SECONDS = 5.0
RETRY_SECONDS = 5  # a 502 page asks the browser to try again, so a polling tab recovers by itself
# No read limit: an event stream or a long poll may be quiet for as long as it likes.
TIMEOUT = httpx.Timeout(connect=CONNECT_SECONDS, read=None, write=30.0, pool=CONNECT_SECONDS)


class Unreachable(UnavailableError):
    """Why the pod cannot be asked: said on the 502 page."""


@dataclass(frozen=True)
class Upstream:
    title: str  # what the 502 page calls it
    namespace: str
    deployment: str
    port_name: str = "http"

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.deployment}"


class PodAddress:
    """The upstream's `http://app_ip:port`, from the topology file, re-read when it is replaced."""

    def __init__(self, topology: Path, upstream: Upstream) -> None:
        self.topology = topology
        self.upstream = upstream
        self._stamp: tuple[int, int, int] | None = None
        self._url: str | Unreachable = Unreachable("not read yet")

    def url(self) -> str:
        try:
            stat = os.stat(self.topology)
        except OSError as exc:
            raise Unreachable(f"the cluster's topology cannot be read: {exc.strerror or exc}") from None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._url = self._read()
            self._stamp = stamp
        if isinstance(self._url, Unreachable):
            raise self._url
        return self._url

    def _read(self) -> str | Unreachable:
        up = self.upstream
        try:
            topology = Topology.load(self.topology)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Unreachable(f"the cluster's topology cannot be read: {exc}")
        for pod in topology.pods:
            if (pod.namespace, pod.deployment, pod.role) == (up.namespace, up.deployment, "workload"):
                port = next((p.port for p in pod.ports if p.name == up.port_name), None)
                if port is None:
                    return Unreachable(f"pod {pod.ref} has no port named {up.port_name!r}")
                return f"http://{pod.app_ip}:{port}"
        return Unreachable(f"the cluster has no pod of {up.name}")


def _without_door_cookies(value: str) -> str | None:
    """A `Cookie` header minus the door's cookies (None: nothing left to send)."""
    kept = []
    for pair in value.split(";"):
        name = pair.split("=", 1)[0].strip()
        if name and not name.startswith(DOOR_COOKIE):
            kept.append(pair.strip())
    return "; ".join(kept) or None


def request_headers(scope: Scope) -> list[tuple[str, str]]:
    """What the pod is sent: the browser's headers minus hop-by-hop, credentials and claims,
    plus who is signed in, as the door's session says."""
    decoded = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    named = {t.strip().lower() for k, v in decoded if k == "connection" for t in v.split(",")}
    drop = HOP_BY_HOP | CLAIMS | named
    sent: list[tuple[str, str]] = []
    for key, value in decoded:
        if key in drop or key.startswith(CLAIM_PREFIXES):
            continue
        if key == "cookie":
            rest = _without_door_cookies(value)
            if rest is not None:
                sent.append((key, rest))
            continue
        sent.append((key, value))
    user = scope.get("user")
    if isinstance(user, SignedIn):
        sent += [
            ("x-forwarded-email", user.email),
            ("x-forwarded-user", user.subject),
            ("x-forwarded-preferred-username", user.name),
            ("x-forwarded-groups", ",".join(user.groups)),
        ]
    return sent


def _sets_door_cookie(value: str) -> bool:
    """Whether a `Set-Cookie` names one of the door's cookies, read as a browser reads it
    (RFC 6265 5.2: the name is what precedes the first `=`, trimmed)."""
    return value.split(";", 1)[0].split("=", 1)[0].strip().startswith(DOOR_COOKIE)


def response_headers(headers: httpx.Headers, origin: str) -> list[tuple[bytes, bytes]]:
    """The pod's answer's headers minus hop-by-hop ones and any cookie of the door's; a redirect
    to the pod's own address is made relative, so the browser stays on the console's port."""
    named = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    out = []
    for key, value in headers.multi_items():
        lower = key.lower()
        if lower in HOP_BY_HOP or lower in named:
            continue
        if lower == "set-cookie" and _sets_door_cookie(value):
            log.warning("dropped a Set-Cookie for the door's cookie from %s", origin)
            continue
        if lower == "location" and value.startswith(origin + "/"):
            value = value.removeprefix(origin)
        out.append((lower.encode("latin-1"), value.encode("latin-1")))
    return out


class Browser:
    """The one reader of the browser's side of the exchange: the request body first, then
    (for as long as the answer lasts) whether the browser has gone."""

    def __init__(self, receive: Receive, framed: bool) -> None:
        self.receive = receive
        self.read = asyncio.Event()  # the body is all read (or there is none)
        if not framed:
            self.read.set()

    async def body(self) -> AsyncIterator[bytes]:
        try:
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    return
                if chunk := message.get("body", b""):
                    yield chunk
                if not message.get("more_body", False):
                    return
        finally:
            self.read.set()

    async def gone(self) -> None:
        await self.read.wait()
        while (await self.receive())["type"] != "http.disconnect":
            pass


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    """Stop what still runs and wait for it; an outcome already read is not raised again."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class UpstreamProxy:
    """An ASGI app relaying every request to `upstream`'s pod; its HTTP client is closed with
    the app's lifespan (the door passes lifespan through)."""

    def __init__(self, topology: Path, upstream: Upstream) -> None:
        self.upstream = upstream
        self.address = PodAddress(topology, upstream)
        self.http: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.relay(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1003, "reason": "not proxied"})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.http is not None:
                    await self.http.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _client(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = httpx.AsyncClient(
                trust_env=False, timeout=TIMEOUT, follow_redirects=False, limits=client_limits()
            )
        return self.http

    async def relay(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if not raw_path.startswith(b"/"):
            await PlainTextResponse("Only a path is proxied.", 400)(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        try:
            origin = self.address.url()
        except Unreachable as exc:
            await self.unavailable(scope, str(exc))(scope, receive, send)
            return
        http = self._client()
        target = httpx.URL(origin).copy_with(raw_path=raw_path + (b"?" + query if query else b""))
        framed = bool({k.lower() for k, _ in scope["headers"]} & {b"content-length", b"transfer-encoding"})
        browser = Browser(receive, framed)
        sent = http.build_request(
            scope["method"],
            target,
            headers=request_headers(scope),
            content=browser.body() if framed else None,
        )
        # A long poll may hold its answer back: a browser that leaves before it comes ends the wait.
        asking = asyncio.create_task(http.send(sent, stream=True))
        gone = asyncio.create_task(browser.gone())
        try:
            await asyncio.wait((asking, gone), return_when=asyncio.FIRST_COMPLETED)
            if not asking.done():
                return
            try:
                answer = asking.result()
            except httpx.HTTPError as exc:
                why = f"{self.upstream.name} did not answer at {origin}: {exc or type(exc).__name__}"
                log.warning("%s %s: %s", scope["method"], scope["path"], why)
                await self.unavailable(scope, why)(scope, receive, send)
                return
            try:
                await self.stream(answer, origin, send, gone)
            finally:
                await answer.aclose()
        finally:
            await _cancel(asking, gone)

    async def stream(self, answer: httpx.Response, origin: str, send: Send, gone: asyncio.Task[None]) -> None:
        """The answer as it arrives, until it ends or the browser leaves (then it is dropped)."""

        async def pump() -> None:
            await send({
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": response_headers(answer.headers, origin),
            })  # fmt: skip
            try:
                async for chunk in answer.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                # The status is sent: left unfinished, the browser sees a broken answer, not a whole one.
                log.warning("the answer from %s broke off: %s", self.upstream.name, exc)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        relaying = asyncio.create_task(pump())
        try:
            await asyncio.wait((relaying, gone), return_when=asyncio.FIRST_COMPLETED)
            if relaying.done():
                relaying.result()  # a fault of ours is raised, not swallowed
        finally:
            await _cancel(relaying)

    def unavailable(self, scope: Scope, why: str) -> Response:
        """502: a page for a browser (which tries again by itself), plain text for anything else."""
        accepts = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        headers = {"Retry-After": str(RETRY_SECONDS)}
        if "text/html" in accepts:
            page = refusal(f"{self.upstream.title}: unavailable", why, 502)
            page.headers.update(headers | {"Refresh": str(RETRY_SECONDS)})
            return page
        return PlainTextResponse(f"{self.upstream.title} is unavailable: {why}\n", 502, headers=headers)
