"""Transparent capture: a connection nftables redirected to the capture port, and where it was going.

istio-cni's in-pod rules send a pod's outbound TCP to ztunnel's :15001 whatever the
app asked for; the kernel keeps the original destination in conntrack, where
`SO_ORIGINAL_DST` reads it. A connection the app made to the capture itself (a
proxy-aware client speaking SOCKS) reads back the capture's own address.
"""

from __future__ import annotations

import asyncio
import socket
import struct

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
IN_POD_RULES_TABLE = "trustusbank_capture"


def original_destination(writer: asyncio.StreamWriter) -> tuple[str, int] | None:
    """Where a redirected connection was headed, or None when it came to the capture on purpose."""
    sock: socket.socket | None = writer.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_INET:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:  # no conntrack entry: nothing redirected it
        return None
    port, packed = struct.unpack_from("!H4s", raw, 2)
    original = (socket.inet_ntoa(packed), port)
    return None if original == tuple(sock.getsockname()[:2]) else original


def in_pod_rules(capture: tuple[str, int], app_ip: str) -> str:
    """The nftables ruleset for one pod's namespace (as istio-cni installs in-pod).

    Every TCP connection the pod opens goes to the capture, except to its own loopback
    (127.0.0.1, where the capture itself listens) and to its own app address (the node
    proxy's inbound delivery, made from inside the namespace, and the app calling itself).
    """
    host, port = capture
    return (
        f"table ip {IN_POD_RULES_TABLE} {{}}\n"
        f"flush table ip {IN_POD_RULES_TABLE}\n"
        f"table ip {IN_POD_RULES_TABLE} {{\n"
        "  chain output {\n"
        "    type nat hook output priority -100; policy accept;\n"
        f"    ip daddr {{ {host}, {app_ip} }} return\n"
        f"    meta l4proto tcp redirect to :{port}\n"
        "  }\n"
        "}\n"
    )
