"""Which isolation the pods get here, decided once per `up` and said everywhere.

`namespaces`: each pod has its own network, mount, PID, UTS and IPC namespaces
(and, when the runtime runs as root, its own uid), as on a kind node. The rights
come from running as root, or else from an unprivileged user namespace the
supervisor enters before it starts anything (it stays in the host's network
namespace, so the seed's ports still bind on the host's loopback).

`cooperative`: pods are plain processes of the operator's user on a shared
loopback, captured only because they honour `ALL_PROXY`. Good for a laptop
demo; **not a security boundary**, and labelled so wherever the mode is shown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

from trustusbank.env import ISOLATION
from trustusbank.errors import ConfigError
from trustusbank.kernel.syscalls import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    MS_PRIVATE,
    MS_REC,
    mount,
    unshare,
)

NAMESPACES = "namespaces"
COOPERATIVE = "cooperative"
POD_FLAGS = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC


class IsolationUnavailable(ConfigError, RuntimeError):
    """`TRUSTUSBANK_ISOLATION=namespaces` was asked for where the kernel does not allow it."""


@dataclass(frozen=True)
class Isolation:
    mode: str  # NAMESPACES or COOPERATIVE
    via: str  # "root", "user namespace", or "" when cooperative
    reason: str  # why cooperative, or ""
    pod_uids: bool  # each pod runs as its own uid (only a root runtime can give them)
    transparent: bool = False  # nftables redirects every pod's TCP to its capture, as istio-cni does

    @property
    def capture(self) -> str:
        if not self.isolated:
            return "ALL_PROXY only"
        if self.transparent:
            return "transparent (nftables in each pod) and ALL_PROXY"
        return "ALL_PROXY only (no nft here: other connections have no route)"

    @property
    def isolated(self) -> bool:
        return self.mode == NAMESPACES

    def describe(self) -> str:
        if self.isolated:
            uids = "and its own uid" if self.pod_uids else "(one uid: user-namespace runtime)"
            return (
                f"namespaces via {self.via}: each pod has its own network, mount and PID namespaces "
                f"{uids}; capture: {self.capture}"
            )
        return f"cooperative: NOT a security boundary ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.describe()}


NFT_PROBE = """table ip trustusbank_probe {
  chain output {
    type nat hook output priority -100;
  }
}
"""


def _probe(user: bool) -> str | None:
    """Try, in a throwaway child, what every pod will need; None if it works, else why not."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports through the pipe
        os.close(read)
        try:
            unshare(POD_FLAGS | (CLONE_NEWUSER if user else 0))
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            os.write(write, b"ok")
        except OSError as exc:
            os.write(write, str(exc).encode()[:500])
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        said = answer.read().decode(errors="replace")
    os.waitpid(child, 0)
    return None if said == "ok" else said or "the probe died"


def _nft_works(user: bool) -> bool:
    """Whether nftables can redirect inside a fresh network namespace (the `nft` tool and the kernel)."""
    nft = shutil.which("nft")
    if nft is None:
        return False
    flags = ["--net"] + (["--user", "--map-root-user"] if user else [])
    unshare_tool = shutil.which("unshare")
    if unshare_tool is None:
        return False
    done = subprocess.run(
        [unshare_tool, *flags, nft, "-f", "-"], input=NFT_PROBE, capture_output=True, text=True, check=False
    )
    return done.returncode == 0


def _enter_user_namespace() -> None:
    """Become root of a fresh user namespace, mapped to the operator's own uid and gid."""
    if threading.active_count() > 1:
        raise IsolationUnavailable("a user namespace must be entered before any thread starts")
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as out:
        out.write("deny")
    with open("/proc/self/uid_map", "w") as out:
        out.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as out:
        out.write(f"0 {gid} 1")


def _fallback(wanted: str, reason: str) -> Isolation:
    if wanted == NAMESPACES:
        raise IsolationUnavailable(f"{ISOLATION.name}=namespaces, but {reason}")
    return Isolation(COOPERATIVE, "", reason, pod_uids=False)


def prepare() -> Isolation:
    """Decide the mode, and enter a user namespace if that is how the rights are had.

    Call before any thread starts (a user namespace can be entered only then). An explicit
    `namespaces` that cannot be had is an error; `auto` falls back and says why.
    """
    wanted = ISOLATION.read()
    if wanted == COOPERATIVE:
        return Isolation(COOPERATIVE, "", f"{ISOLATION.name}=cooperative", pod_uids=False)
    if not sys.platform.startswith("linux"):
        return _fallback(wanted, f"{sys.platform} has no Linux namespaces")
    if os.geteuid() == 0:
        why = _probe(user=False)
        if why is None:
            return Isolation(NAMESPACES, "root", "", pod_uids=True, transparent=_nft_works(user=False))
        return _fallback(wanted, f"running as root, but the kernel refused namespaces: {why}")
    why = _probe(user=True)
    if why is not None:
        return _fallback(wanted, f"not root, and no unprivileged user namespace: {why}")
    transparent = _nft_works(user=True)  # before entering: it starts a process of its own
    _enter_user_namespace()
    return Isolation(NAMESPACES, "user namespace", "", pod_uids=False, transparent=transparent)
