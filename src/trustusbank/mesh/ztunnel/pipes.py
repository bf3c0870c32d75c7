"""Copy bytes both ways between two plain TCP streams, half-closes included."""

from __future__ import annotations

import asyncio
import contextlib


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    total = 0
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
            total += len(data)
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    return total


async def pipe_plain(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> tuple[int, int]:
    """Returns (bytes client→upstream, bytes upstream→client)."""
    sent, received = await asyncio.gather(
        _copy(client_reader, upstream_writer), _copy(upstream_reader, client_writer)
    )
    for writer in (client_writer, upstream_writer):
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()
    return sent, received
