"""The capture point of the embedded mode: a SOCKS5 listener per pod.

Real ztunnel gets a pod's outbound connections from iptables/eBPF. Here each
pod is given `ALL_PROXY=socks5h://<pod-ip>:15001`, so its HTTP clients hand
every connection, with the *name* they asked for, to the pod's node proxy.
Only SOCKS5 CONNECT without authentication is spoken: that is all a capture
point needs (RFC 1928).
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum

from trustusbank.errors import ProtocolError

VERSION = 5
NO_AUTH = 0
NO_ACCEPTABLE = 0xFF
CONNECT = 1
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4


class Reply(IntEnum):
    SUCCEEDED = 0
    GENERAL_FAILURE = 1
    NOT_ALLOWED = 2
    NETWORK_UNREACHABLE = 3
    HOST_UNREACHABLE = 4
    CONNECTION_REFUSED = 5
    COMMAND_NOT_SUPPORTED = 7
    ADDRESS_NOT_SUPPORTED = 8


class SocksError(ProtocolError):
    def __init__(self, reply: Reply, message: str) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class ConnectRequest:
    host: str  # a name or an IP literal, exactly as the client asked
    port: int


async def read_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> ConnectRequest:
    """Negotiate no-auth and read one CONNECT; raises SocksError (after replying) otherwise."""
    version, count = await reader.readexactly(2)
    methods = await reader.readexactly(count)
    if version != VERSION:
        raise SocksError(Reply.GENERAL_FAILURE, f"not SOCKS5 (version byte {version})")
    if NO_AUTH not in methods:
        writer.write(bytes([VERSION, NO_ACCEPTABLE]))
        raise SocksError(Reply.GENERAL_FAILURE, "client offers no no-auth method")
    writer.write(bytes([VERSION, NO_AUTH]))
    version, command, _, atyp = await reader.readexactly(4)
    if atyp == ATYP_IPV4:
        host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
    elif atyp == ATYP_IPV6:
        host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
    elif atyp == ATYP_DOMAIN:
        (length,) = await reader.readexactly(1)
        host = (await reader.readexactly(length)).decode("idna")
    else:
        await reply(writer, Reply.ADDRESS_NOT_SUPPORTED)
        raise SocksError(Reply.ADDRESS_NOT_SUPPORTED, f"address type {atyp}")
    (port,) = struct.unpack("!H", await reader.readexactly(2))
    if command != CONNECT:
        await reply(writer, Reply.COMMAND_NOT_SUPPORTED)
        raise SocksError(Reply.COMMAND_NOT_SUPPORTED, f"command {command}")
    return ConnectRequest(host, port)


async def reply(writer: asyncio.StreamWriter, code: Reply, bound: tuple[str, int] = ("0.0.0.0", 0)) -> None:
    addr = ipaddress.IPv4Address(bound[0]).packed
    writer.write(bytes([VERSION, code, 0, ATYP_IPV4]) + addr + struct.pack("!H", bound[1]))
    await writer.drain()
