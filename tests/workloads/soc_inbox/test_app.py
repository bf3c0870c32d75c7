"""The SOC inbox: SMTP in over a real socket (direct and through a SOCKS5 capture point), durable
storage, an escaped page, and a reset that moves the view without deleting anything."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.serving import serving as running
from trustusbank.alerts.smtp_client import DeliveryError, send
from trustusbank.mesh.ztunnel.socks import Reply, read_connect, reply
from trustusbank.workloads.soc_inbox.app import create_app
from trustusbank.workloads.soc_inbox.store import MailStore

HOSTILE = "<script>alert('x')</script>"


def message(subject: str, body: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "alerts@trustusbank.local"
    mail["To"] = "soc@trustusbank.local"
    mail["Subject"] = subject
    mail["X-Alertname"] = "IstioAuthZDeny"
    mail["X-Offender"] = "spiffe://cluster.local/ns/trustusbank-bank-vendors/sa/currency-converter"
    mail.set_content(body)
    return mail


@contextlib.asynccontextmanager
async def inbox(db: Path) -> AsyncIterator[tuple[str, tuple[str, int]]]:
    app = create_app(MailStore(db), ("127.0.0.1", 0), identify=lambda ip: f"spiffe://test/{ip}")
    async with running(app) as url:
        yield url, app.state.smtp_address


async def test_a_mail_is_stored_durably_and_shown_escaped(tmp_path: Path) -> None:
    db = tmp_path / "inbox.sqlite3"
    async with inbox(db) as (url, (host, port)):
        await asyncio.to_thread(
            send, message(f"deny {HOSTILE}", f"body {HOSTILE}\nline two"), host, port, None
        )
        async with httpx.AsyncClient(trust_env=False) as client:
            listed = (await client.get(f"{url}/api/messages")).json()
            page = (await client.get(url)).text
            one = (await client.get(f"{url}/api/messages/{listed['messages'][0]['id']}")).json()
    assert listed["count"] == 1
    [mail] = listed["messages"]
    assert mail["subject"] == f"deny {HOSTILE}"
    assert mail["alertname"] == "IstioAuthZDeny"
    assert mail["offender"].endswith("/sa/currency-converter")
    assert mail["rcpt_to"] == ["soc@trustusbank.local"]
    assert mail["peer_identity"] == "spiffe://test/127.0.0.1"
    assert "line two" in mail["body"]
    assert one == mail
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    # A new process on the same file sees the message: it was committed before the 250.
    assert [m["subject"] for m in MailStore(db).messages()] == [f"deny {HOSTILE}"]


async def test_reset_moves_the_view_and_deletes_nothing(tmp_path: Path) -> None:
    async with inbox(tmp_path / "inbox.sqlite3") as (url, (host, port)):
        await asyncio.to_thread(send, message("first", "1"), host, port, None)
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.post(f"{url}/api/reset")).json() == {"count": 0, "total": 1}
            await asyncio.to_thread(send, message("second", "2"), host, port, None)
            assert (await client.get(f"{url}/api/count")).json() == {"count": 1, "total": 2}
            view = (await client.get(f"{url}/api/messages")).json()["messages"]
            everything = (await client.get(f"{url}/api/messages", params={"all": "1"})).json()["messages"]
            since = view[0]["received_at"]
            newer = (await client.get(f"{url}/api/messages", params={"all": "1", "since": since})).json()
            assert (await client.get(f"{url}/api/messages", params={"limit": "x"})).status_code == 400
            assert (await client.get(f"{url}/api/messages/999")).status_code == 404
    assert [m["subject"] for m in view] == ["second"]
    assert [m["subject"] for m in everything] == ["second", "first"]
    assert [m["subject"] for m in newer["messages"]] == ["second"]


@contextlib.asynccontextmanager
async def socks_proxy(names: dict[str, tuple[str, int]]) -> AsyncIterator[tuple[str, int]]:
    """A capture point like the node proxy's: SOCKS5 CONNECT by name, then plain bytes both ways."""
    requested: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_connect(reader, writer)
        requested.append(f"{request.host}:{request.port}")
        target = names.get(request.host)
        if target is None:
            await reply(writer, Reply.NOT_ALLOWED)
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*target)
        await reply(writer, Reply.SUCCEEDED)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()
        await server.wait_closed()
    assert requested, "nothing went through the proxy"


async def test_delivery_through_a_socks_capture_point_by_service_name(tmp_path: Path) -> None:
    service = "soc-inbox.trustusbank-observability.svc.cluster.local"
    async with inbox(tmp_path / "inbox.sqlite3") as (url, smtp), socks_proxy({service: smtp}) as proxy:
        await asyncio.to_thread(send, message("via the mesh", "x"), service, 2525, proxy)
        with pytest.raises(DeliveryError, match="refused the connection"):
            await asyncio.to_thread(send, message("nowhere", "x"), "elsewhere.example", 25, proxy, 5)
        async with httpx.AsyncClient(trust_env=False) as client:
            subjects = [m["subject"] for m in (await client.get(f"{url}/api/messages")).json()["messages"]]
    assert subjects == ["via the mesh"]


async def test_a_message_that_cannot_be_stored_is_not_accepted(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "inbox.sqlite3")
    app = create_app(store, ("127.0.0.1", 0))
    async with running(app):
        host, port = app.state.smtp_address
        (tmp_path / "inbox.sqlite3").unlink()
        (tmp_path / "inbox.sqlite3").mkdir()  # the database is gone and cannot be recreated
        with pytest.raises(DeliveryError, match="451"):
            await asyncio.to_thread(send, message("lost?", "x"), host, port, None)
