"""An operator pod's page through the console's relay, behind the front door, as a browser meets it.

Real servers on 127.0.0.1: the sign-in provider, the door around the relay, and an upstream
standing in for the pod (found in the topology file as the runtime writes it). The upstream
says what reached it, so a test sees what the pod would: no session cookie, no identity a
browser wrote, only the door's word on who is signed in.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from tests.console.pods import pod, write_topology
from tests.console.signin.world import location, serve_on, sign_in, url_of
from trustusbank.console.signin.chain import sign_in_chain
from trustusbank.console.upstream_proxy import Upstream, UpstreamProxy
from trustusbank.workloads.serving import bind

INBOX = Upstream("SOC inbox", "trustusbank-observability", "soc-inbox")
STREAM_WAIT = 30.0  # an upper bound for a chunk on a busy machine, not a duration
CLOSE_WAIT = 5  # a server's graceful stop: a relay that failed to let go fails its test, not hangs it
FORGED = {
    "X-Forwarded-Email": "mallory@evil.example",
    "X-Forwarded-Groups": "admins",
    "X-Auth-Request-User": "mallory",
    "Forwarded": "for=10.0.0.1",
    "Authorization": "Bearer forged",
}


@dataclass
class PodApp:
    """A raw ASGI app standing in for the pod: what reached it, and streams the test paces."""

    name: str
    seen: list[dict[str, object]] = field(default_factory=list)
    go: asyncio.Event = field(default_factory=asyncio.Event)  # the event stream's second event
    left: asyncio.Event = field(default_factory=asyncio.Event)  # the browser left a long poll
    held: asyncio.Event = field(default_factory=asyncio.Event)  # a held-back answer was asked for
    let_go: asyncio.Event = field(default_factory=asyncio.Event)  # ... and its asker went away

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/events":
            await self.events(send)
        elif path == "/poll":
            await self.poll(receive, send)
        elif path == "/hold":
            await self.hold(receive)
        elif path == "/cut":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"the first half", "more_body": True})
            # and no more: the server cuts the connection, the answer unfinished
        else:
            await self.echo(scope, receive, send)

    async def echo(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        said = {
            "pod": self.name,
            "method": scope["method"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "body": body.decode(),
        }
        self.seen.append(said)
        headers = [(b"content-type", b"application/json")]
        if scope["path"] == "/moved":
            origin = f"http://127.0.0.1:{scope['server'][1]}"
            headers.append((b"location", f"{origin}/alerts?x=1".encode()))
        if scope["path"] == "/cookies":
            headers += [
                (b"set-cookie", b"_oauth2_proxy=stolen; Path=/"),
                (b"set-cookie", b"_oauth2_proxy_csrf_abc=x; Path=/oauth2/callback"),
                (b"set-cookie", b"theme=light; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
            ]
        status = 302 if scope["path"] == "/moved" else 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(said).encode()})

    async def events(self, send: Send) -> None:
        """Server-sent events: one now, one once the test has seen the first."""
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await self.go.wait()
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": False})

    async def poll(self, receive: Receive, send: Send) -> None:
        """A long poll that never answers in full: it notices only the browser leaving."""
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"waiting\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        self.left.set()

    async def hold(self, receive: Receive) -> None:
        """A long poll that holds even its status back, until the asker goes away."""
        self.held.set()
        while (await receive())["type"] != "http.disconnect":
            pass
        self.let_go.set()


@dataclass
class Console:
    url: str  # the relayed page's origin
    topology: Path
    browser: httpx.AsyncClient  # a cookie jar per host, no redirect followed by itself


@asynccontextmanager
async def console(
    tmp_path: Path, pods: list[tuple[PodApp, socket.socket]], door: bool = True
) -> AsyncIterator[Console]:
    """The relay to the SOC inbox (the first pod in the topology), with the door before it or not."""
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    topology = state / "topology.json"
    write_topology(topology, [pod(INBOX.namespace, INBOX.deployment, pods[0][1].getsockname()[1])])
    page, provider = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    relay = UpstreamProxy(topology, INBOX)
    async with AsyncExitStack() as stack:
        for app, sock in pods:
            await stack.enter_async_context(serve_on(sock, app, CLOSE_WAIT))
        if door:
            chain = sign_in_chain(state, url_of(provider), [(relay, url_of(page))])
            await stack.enter_async_context(serve_on(provider, chain.provider, CLOSE_WAIT))
            await stack.enter_async_context(serve_on(page, chain.pages[0], CLOSE_WAIT))
        else:
            provider.close()
            await stack.enter_async_context(serve_on(page, relay, CLOSE_WAIT))
        browser = await stack.enter_async_context(httpx.AsyncClient(trust_env=False, timeout=30))
        yield Console(url_of(page), topology, browser)


def _headers(said: dict[str, object]) -> dict[str, str]:
    pairs = said["headers"]
    assert isinstance(pairs, list)
    return {k: v for k, v in pairs}


def _sent_as(said: dict[str, object], name: str) -> list[str]:
    pairs = said["headers"]
    assert isinstance(pairs, list)
    return [v for k, v in pairs if k == name]


async def test_without_a_session_a_page_is_sent_to_sign_in_and_anything_else_refused(tmp_path: Path) -> None:
    inbox = PodApp("inbox")
    async with console(tmp_path, [(inbox, bind("127.0.0.1", 0))]) as front:
        browser = front.browser
        page = await browser.get(f"{front.url}/")
        api = await browser.post(f"{front.url}/api/reset")
        forged = await browser.get(f"{front.url}/api/count", headers=FORGED)
    assert page.status_code == 302
    assert "/auth?" in location(page)
    assert api.status_code == 401
    assert forged.status_code == 302  # a header naming someone is no session
    assert inbox.seen == []  # nothing reached the pod


async def test_signed_in_the_pod_answers_and_sees_the_doors_word_not_the_browsers(tmp_path: Path) -> None:
    inbox = PodApp("inbox")
    async with console(tmp_path, [(inbox, bind("127.0.0.1", 0))]) as front:
        browser = front.browser
        await sign_in(browser, f"{front.url}/")
        landed = await browser.get(f"{front.url}/messages%2Fall?since=1&x=%20")
        browser.cookies.set("theme", "dark")
        posted = await browser.post(f"{front.url}/api/reset", content=b"x" * 100_000, headers=FORGED)
        moved = await browser.get(f"{front.url}/moved")
        cookies = await browser.get(f"{front.url}/cookies")
    first, reset = landed.json(), posted.json()
    assert landed.status_code == 200
    assert (first["pod"], first["method"], first["raw_path"], first["query"]) == (
        "inbox", "GET", "/messages%2Fall", "since=1&x=%20",
    )  # fmt: skip
    assert (reset["method"], len(reset["body"])) == ("POST", 100_000)
    headers = _headers(reset)
    assert _sent_as(reset, "x-forwarded-email") == ["admin@kagent.local"]
    assert _sent_as(reset, "x-forwarded-groups") == ["admins"]
    assert "x-auth-request-user" not in headers
    assert "forwarded" not in headers
    assert "authorization" not in headers
    assert headers["cookie"] == "theme=dark"  # the pod's own cookies pass; the session does not
    assert all("_oauth2_proxy" not in v for v in _sent_as(first, "cookie") + _sent_as(reset, "cookie"))
    assert moved.status_code == 302
    assert moved.headers["location"] == "/alerts?x=1"  # the browser stays on the console's port
    assert cookies.status_code == 200, cookies.text
    assert cookies.headers.get_list("set-cookie") == ["theme=light; Expires=Wed, 21 Oct 2037 07:28:00 GMT"]


async def test_an_event_stream_arrives_event_by_event_and_a_long_poll_ends_when_the_browser_leaves_it(
    tmp_path: Path,
) -> None:
    inbox = PodApp("inbox")
    async with console(tmp_path, [(inbox, bind("127.0.0.1", 0))]) as front:
        browser = front.browser
        await sign_in(browser, f"{front.url}/")
        async with browser.stream("GET", f"{front.url}/events") as events:
            lines = events.aiter_lines()
            first = await asyncio.wait_for(anext(lines), STREAM_WAIT)  # before the pod sends more
            inbox.go.set()
            rest = [line async for line in lines]
        async with browser.stream("GET", f"{front.url}/poll") as poll:
            waiting = await asyncio.wait_for(anext(poll.aiter_lines()), STREAM_WAIT)
        await asyncio.wait_for(inbox.left.wait(), STREAM_WAIT)  # the relay let go of the pod
        held = asyncio.create_task(browser.get(f"{front.url}/hold"))
        await asyncio.wait_for(inbox.held.wait(), STREAM_WAIT)
        held.cancel()  # the browser leaves before any answer began
        await asyncio.wait_for(inbox.let_go.wait(), STREAM_WAIT)  # and the relay's request ends too
    assert events.headers["content-type"] == "text/event-stream"
    assert first == "data: one"
    assert rest == ["", "data: two", ""]
    assert waiting == "waiting"


async def test_an_answer_the_pod_cut_off_reaches_the_browser_broken_not_whole(tmp_path: Path) -> None:
    async with console(tmp_path, [(PodApp("inbox"), bind("127.0.0.1", 0))]) as front:
        await sign_in(front.browser, f"{front.url}/")
        with pytest.raises(httpx.RemoteProtocolError):
            await front.browser.get(f"{front.url}/cut")


async def test_a_pod_that_is_down_is_a_502_page_and_a_moved_pod_is_followed(tmp_path: Path) -> None:
    first, second = PodApp("first"), PodApp("second")
    second_sock = bind("127.0.0.1", 0)
    async with console(tmp_path, [(first, bind("127.0.0.1", 0)), (second, second_sock)]) as front:
        browser = front.browser
        before = await sign_in(browser, f"{front.url}/")
        write_topology(front.topology, [pod(INBOX.namespace, INBOX.deployment, second_sock.getsockname()[1])])
        after = await browser.get(f"{front.url}/")
        gone = bind("127.0.0.1", 0)
        closed_port = gone.getsockname()[1]
        gone.close()  # nothing listens there now
        write_topology(front.topology, [pod(INBOX.namespace, INBOX.deployment, closed_port)])
        down = await browser.get(f"{front.url}/", headers={"Accept": "text/html"})
        down_api = await browser.get(f"{front.url}/api/count", headers={"Accept": "application/json"})
        write_topology(front.topology, [pod("elsewhere", "other", closed_port)])
        missing = await browser.get(f"{front.url}/", headers={"Accept": "text/html"})
        front.topology.unlink()
        unread = await browser.get(f"{front.url}/", headers={"Accept": "text/html"})
    assert before.json()["pod"] == "first"
    assert after.json()["pod"] == "second"
    assert down.status_code == 502
    assert down.headers["content-type"].startswith("text/html")
    assert down.headers["refresh"] == "5"  # a polling tab tries again by itself
    assert f"did not answer at http://127.0.0.1:{closed_port}" in down.text
    assert "Traceback" not in down.text
    assert down_api.status_code == 502
    assert down_api.headers["content-type"].startswith("text/plain")
    assert "SOC inbox is unavailable" in down_api.text
    assert missing.status_code == 502
    assert "the cluster has no pod of trustusbank-observability/soc-inbox" in missing.text
    assert unread.status_code == 502
    assert "topology cannot be read" in unread.text


async def test_with_the_sign_in_off_the_relay_is_open_and_still_passes_no_forged_identity(
    tmp_path: Path,
) -> None:
    inbox = PodApp("inbox")
    async with console(tmp_path, [(inbox, bind("127.0.0.1", 0))], door=False) as front:
        browser = front.browser
        answer = await browser.get(
            f"{front.url}/api/count", headers={**FORGED, "Cookie": "_oauth2_proxy=x; theme=dark"}
        )
    said = answer.json()
    headers = _headers(said)
    assert answer.status_code == 200
    assert [k for k in headers if k.startswith(("x-forwarded-", "x-auth-request-"))] == []
    assert "authorization" not in headers
    assert headers["cookie"] == "theme=dark"
