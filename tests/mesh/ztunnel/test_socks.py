"""The capture point speaks enough SOCKS5 for real clients, and refuses the rest cleanly."""

from __future__ import annotations

import asyncio
import struct

import pytest

from trustusbank.mesh.ztunnel.socks import ConnectRequest, Reply, SocksError, read_connect, reply


async def _server_reading(raw: bytes) -> tuple[ConnectRequest | SocksError, bytes]:
    result: list[ConnectRequest | SocksError] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_connect(reader, writer)
            result.append(request)
            await reply(writer, Reply.SUCCEEDED)
        except SocksError as exc:
            result.append(exc)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    server.close()
    await server.wait_closed()
    return result[0], answer


async def test_domain_connect() -> None:
    name = b"fx-api.external-fx.svc.cluster.local"
    raw = b"\x05\x01\x00" + b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", 8080)
    request, answer = await _server_reading(raw)
    assert request == ConnectRequest("fx-api.external-fx.svc.cluster.local", 8080)
    assert answer[:2] == b"\x05\x00"
    assert answer[2:4] == b"\x05\x00"


async def test_ipv4_connect() -> None:
    raw = b"\x05\x01\x00" + b"\x05\x01\x00\x01" + bytes([127, 0, 0, 1]) + struct.pack("!H", 80)
    request, _ = await _server_reading(raw)
    assert request == ConnectRequest("127.0.0.1", 80)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\x05\x01\x02", Reply.GENERAL_FAILURE),  # only username/password offered
        (b"\x05\x01\x00" + b"\x05\x02\x00\x01" + bytes(4) + b"\x00\x50", Reply.COMMAND_NOT_SUPPORTED),  # BIND
        (b"\x04\x01\x00", Reply.GENERAL_FAILURE),  # SOCKS4
    ],
)
async def test_refusals(raw: bytes, code: Reply) -> None:
    error, _ = await _server_reading(raw)
    assert isinstance(error, SocksError)
    assert error.reply == code
