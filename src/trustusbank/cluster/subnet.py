"""Give each running cluster its own loopback /16, so two state directories never collide.

The claim is a listening socket on 127.B.255.254 that the supervisor holds for
its lifetime: the kernel, not a lock file, says which blocks are taken, and a
crashed supervisor frees its block by dying.
"""

from __future__ import annotations

import socket
import zlib
from pathlib import Path

FIRST, LAST = 16, 250
CLAIM_PORT = 15000


def _claim(subnet: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((f"127.{subnet}.255.254", CLAIM_PORT))
        sock.listen(1)
    except OSError:
        sock.close()
        return None
    return sock


def allocate(state: Path) -> tuple[int, socket.socket]:
    """The block this state prefers (stable across runs), or the next free one."""
    span = LAST - FIRST + 1
    preferred = FIRST + zlib.crc32(str(state.resolve()).encode()) % span
    for offset in range(span):
        subnet = FIRST + (preferred - FIRST + offset) % span
        claim = _claim(subnet)
        if claim is not None:
            return subnet, claim
    raise RuntimeError("no free 127.x.0.0/16 block for another cluster")
