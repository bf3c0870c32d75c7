"""The console as the runtime runs it: a real `trustusbank console serve` on sockets the runtime bound.

The operator pods' pages (alerts, SOC inbox, agent registry) are the console's too, relayed to
the pods the topology names: one sign-in, on any page, opens them all.

The URL is known before the process starts and survives its crash: the restarted process serves
the same socket. A seed port another program holds is said, and the page served elsewhere.
The pages are behind the sign-in (its provider is one of the console's sockets): the test signs
in as the write-up's admin through the provider's form, and the session outlives the crash too,
the cookie key being kept under the state directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.console.pods import pod, write_topology
from tests.console.signin.world import echo_app, location, serve_on, sign_in
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.runtime.console import open_console
from trustusbank.workloads.serving import bind

LIFECYCLE_WAIT = 60.0  # an upper bound on a process start on a busy machine, not a duration


def _page(status: dict[str, object], name: str) -> dict[str, str]:
    pages = status["pages"]
    assert isinstance(pages, list)
    [page] = [p for p in pages if p["name"] == name]
    return dict(page)


def _dashboard(status: dict[str, object]) -> dict[str, str]:
    return _page(status, "dashboard")


async def test_the_console_keeps_its_url_across_a_crash_and_releases_it_when_stopped(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path / "state")
    files.make()
    seen: asyncio.Queue[str] = asyncio.Queue()
    console = open_console(files, None, lambda kind, _: seen.put_nowait(kind))
    url = _dashboard(console.status())["url"]
    provider = _page(console.status(), "signin")["url"]
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/d/dora-evidence")
    await console.start()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
            assert await asyncio.wait_for(_next(seen, "ready"), LIFECYCLE_WAIT) == ["started", "ready"]
            to_sign_in = await http.get(url)
            first = await sign_in(http, url)
            sessions = await http.get(_page(console.status(), "sessions")["url"])  # signed in there too
            pid = console.process.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            after = await asyncio.wait_for(_next(seen, "ready"), LIFECYCLE_WAIT)
            second = await http.get(url)
            status = console.status()
    finally:
        await console.stop()
    stopped = console.status()
    assert location(to_sign_in).startswith(f"{provider}auth?")
    assert first.status_code == 200
    assert "<h1>DORA evidence</h1>" in first.text
    assert sessions.status_code == 200
    assert after == ["crashed", "started", "ready"]
    assert second.status_code == 200  # the same session: no sign-in after the restart
    assert "<h1>DORA evidence</h1>" in second.text
    assert (status["restarts"], _dashboard(status)["url"]) == (1, url)
    assert status["pid"] not in (None, pid)
    assert (stopped["pid"], stopped["ready"], _dashboard(stopped)["url"]) == (None, False, url)
    async with httpx.AsyncClient(trust_env=False) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(url)  # stopped, and its socket closed with it


async def _next(seen: asyncio.Queue[str], last: str) -> list[str]:
    """The events up to and including the next `last`."""
    kinds = [await seen.get()]
    while kinds[-1] != last:
        kinds.append(await seen.get())
    return kinds


async def test_a_taken_seed_port_is_said_and_the_page_served_on_a_free_one(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path / "state")
    files.make()
    holder = bind("127.0.0.1", 0)  # another program on the dashboard's seed port
    taken = holder.getsockname()[1]
    console = open_console(files, {"dashboard": taken}, lambda *_: None)
    try:
        page = _dashboard(console.status())
    finally:
        await console.stop()
        holder.close()
    assert page["seed_port"] == taken
    assert f"port {taken} on 127.0.0.1 is already in use" in page["note"]
    assert f":{taken}/" not in page["url"]
    assert f"served on {page['url']} instead" in page["note"]


async def test_with_the_sign_in_off_there_is_no_provider_and_the_pages_are_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTUSBANK_CONSOLE_SIGNIN", "0")  # read here, and by the process it starts
    files = ClusterFiles(tmp_path / "state")
    files.make()
    seen: asyncio.Queue[str] = asyncio.Queue()
    console = open_console(files, None, lambda kind, _: seen.put_nowait(kind))
    names = [p["name"] for p in console.status()["pages"]]
    await console.start()
    try:
        await asyncio.wait_for(_next(seen, "ready"), LIFECYCLE_WAIT)
        async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
            page = await http.get(_dashboard(console.status())["url"])
    finally:
        await console.stop()
    assert names == ["dashboard", "sessions", "alerts", "inbox", "registry"]
    assert page.status_code == 200
    assert "<h1>DORA evidence</h1>" in page.text


async def test_one_sign_in_opens_the_operator_pods_pages_the_console_relays(tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path / "state")
    files.make()
    evaluator = bind("127.0.0.1", 0)  # the alert evaluator's app, as its pod would serve it
    write_topology(
        files.topology, [pod("trustusbank-observability", "alert-evaluator", evaluator.getsockname()[1])]
    )
    seen: asyncio.Queue[str] = asyncio.Queue()
    console = open_console(files, None, lambda kind, _: seen.put_nowait(kind))
    alerts, inbox = _page(console.status(), "alerts")["url"], _page(console.status(), "inbox")["url"]
    await console.start()
    try:
        async with serve_on(evaluator, echo_app()), httpx.AsyncClient(trust_env=False, timeout=30) as http:
            await asyncio.wait_for(_next(seen, "ready"), LIFECYCLE_WAIT)
            before = await http.get(alerts)
            await sign_in(http, _dashboard(console.status())["url"])
            relayed = await http.get(alerts, headers={"X-Forwarded-Email": "mallory@evil.example"})
            no_pod = await http.get(inbox, headers={"Accept": "text/html"})
    finally:
        await console.stop()
    assert alerts.endswith("/alerts")
    assert before.status_code == 302  # behind the door like the console's own pages
    assert relayed.status_code == 200
    assert relayed.json()["path"] == "/alerts"
    assert relayed.json()["forwarded"]["x-forwarded-email"] == "admin@kagent.local"
    assert no_pod.status_code == 502  # this topology has no SOC inbox: said, not a traceback
    assert "the cluster has no pod of trustusbank-observability/soc-inbox" in no_pod.text
