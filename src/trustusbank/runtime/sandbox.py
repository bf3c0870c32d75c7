"""A pod's sandbox in the namespaces mode: its network namespace, uid and root filesystem.

The sandbox outlives the pod's process, as a pod's pause container outlives its
container's restarts: the network namespace is made once, handed to the node proxy
(which plants its capture listener in it, as istio-cni hands ztunnel a pod's netns),
and only then is the pod's process started inside it by `podinit`.

From the node (the host's loopback) a pod's app address is reachable through a
route the supervisor holds, as a node reaches its pods' IPs: kubelet probes,
port-forwards and the operator's tools use it. So is the pod's capture, at
`<pod-ip>:15001` on the host, which is how the operator's tools act *as* a pod
(what `kubectl exec` gives a cluster admin). No pod can reach either: a pod's
loopback is its own, and the host's is not in its namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustusbank
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.ports import IN_POD_CAPTURE, OUTBOUND_PORT
from trustusbank.cluster.topology import Pod, Topology
from trustusbank.errors import ConfigError
from trustusbank.kernel.netns import NetworkNamespace
from trustusbank.kernel.rootfs import RootFs, system_paths
from trustusbank.mesh.ztunnel.pipes import pipe_plain
from trustusbank.mesh.ztunnel.redirect import in_pod_rules
from trustusbank.runtime.isolation import Isolation

FIRST_POD_UID = 200_000  # pods' uids, far from any real account's


class SandboxError(ConfigError, RuntimeError):
    """A pod cannot be given a sandbox that hides what it must not see."""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def image_paths() -> tuple[str, ...]:
    """The "image" every pod runs: the Python installation and the package, read-only.

    Only directories Python itself loads from: never the working directory, which may
    hold anything (a state directory, a checkout with keys).
    """
    found = {sys.base_prefix, sys.prefix, sys.exec_prefix, str(Path(trustusbank.__file__).parents[1])}
    cwd = os.getcwd()
    for entry in sys.path:
        if entry and os.path.isabs(entry) and os.path.isdir(entry) and entry != cwd:
            found.add(os.path.realpath(entry))
    kept: list[str] = []
    for path in sorted(found, key=len):
        if not any(_inside(path, outer) for outer in kept):
            kept.append(path)
    return tuple(sorted(kept))


@dataclass
class PodSandbox:
    pod: Pod
    netns: NetworkNamespace
    uid: int | None
    transparent: bool = False  # install istio-cni's in-pod redirection (nftables) before the pod starts
    routes: list[asyncio.Server] = field(default_factory=list)
    # The namespace ids of the pod's PID 1, read once per process (status is written every second).
    seen: tuple[int, dict[str, str]] | None = None

    async def _route(self, host_ip: str, inside: tuple[str, int]) -> None:
        """Listen on `host_ip` (same port) on the host's loopback; carry each connection to `inside`."""

        async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await self.netns.open_connection(*inside)
            except OSError:
                writer.transport.abort()
                return
            await pipe_plain(reader, writer, up_reader, up_writer)

        self.routes.append(await asyncio.start_server(carry, host_ip, inside[1]))

    async def open_routes(self, capture: tuple[str, int] | None) -> None:
        """The node's routes into the pod: each app port at the app address, and its capture."""
        for port in self.pod.ports:
            await self._route(self.pod.app_ip, (self.pod.app_ip, port.port))
        if capture is not None:
            await self._route(self.pod.ip, capture)

    def close(self) -> None:
        for server in self.routes:
            server.close()
        self.routes.clear()
        self.netns.close()

    def rootfs(self, files: ClusterFiles, pod_dir: Path, readonly: list[Path]) -> RootFs:
        mountpoint = files.root / "rootfs" / f"{self.pod.namespace}_{self.pod.name}"
        mountpoint.mkdir(parents=True, exist_ok=True, mode=0o700)
        shown = [*system_paths(), *image_paths(), *(str(p.resolve()) for p in readonly)]
        state = str(files.root.resolve())
        for path in shown:
            if _inside(state, path):
                raise SandboxError(
                    f"pod {self.pod.ref} would see the cluster state {state} through {path}: "
                    "put the state directory outside the Python installation and the deploy dir"
                )
        return RootFs(str(mountpoint), tuple(dict.fromkeys(shown)), (str(pod_dir.resolve()),))

    def spec(
        self, argv: list[str], files: ClusterFiles, pod_dir: Path, readonly: list[Path]
    ) -> dict[str, Any]:
        """What podinit is told to start `argv` in this sandbox (the network namespace's fd with it)."""
        uid = self.uid
        return {
            "netns_fd": self.netns.fd,
            "rootfs": self.rootfs(files, pod_dir, readonly).to_dict(),
            "hostname": self.pod.name,
            "parent": os.getpid(),  # the supervisor, which starts podinit with this spec
            "uid": uid,
            "gid": uid,
            "chown": [str(pod_dir.resolve())],
            "nft": shutil.which("nft"),
            "nft_rules": (
                in_pod_rules((IN_POD_CAPTURE, OUTBOUND_PORT), self.pod.app_ip) if self.transparent else None
            ),
            "cwd": str(pod_dir.resolve()),
            "argv": argv,
        }

    def command(
        self, argv: list[str], files: ClusterFiles, pod_dir: Path, readonly: list[Path]
    ) -> tuple[list[str], tuple[int, ...]]:
        """The podinit command line that starts `argv` in this sandbox, and the fds it inherits."""
        spec = json.dumps(self.spec(argv, files, pod_dir, readonly))
        return [sys.executable, "-m", "trustusbank.runtime.podinit", "start", spec], (self.netns.fd,)


def make_sandboxes(isolation: Isolation, topology: Topology) -> dict[str, PodSandbox]:
    """One sandbox per workload pod (waypoints are mesh components on the host, as ztunnel is)."""
    if not isolation.isolated:
        return {}
    sandboxes = {}
    for index, pod in enumerate(topology.pods):
        if pod.role != "workload":
            continue
        namespace = topology.namespaces.get(pod.namespace)
        if namespace is None or not namespace.ambient:
            raise SandboxError(
                f"pod {pod.ref} is not in an ambient namespace: an isolated pod's only way out is its "
                "node proxy's capture, so out-of-mesh pods need the cooperative mode here"
            )
        uid = FIRST_POD_UID + index if isolation.pod_uids else None
        sandboxes[pod.ref] = PodSandbox(pod, NetworkNamespace.create(), uid, isolation.transparent)
    return sandboxes


NAMESPACE_KINDS = ("net", "mnt", "pid", "uts", "ipc")


def app_pid(pid: int) -> int | None:
    """The pod's own PID 1, or None when it is not running: `pid` itself when the zygote forked
    it straight into its PID namespace (its innermost pid is 1), else podinit's only child."""
    try:
        inner = Path(f"/proc/{pid}/status").read_text().split("NSpid:", 1)[1].split("\n", 1)[0].split()
    except (OSError, IndexError):
        return None
    if len(inner) > 1 and inner[-1] == "1":
        return pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


@functools.cache
def _own_namespace(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def pod_view(pid: int | None, sandbox: PodSandbox | None) -> dict[str, object]:
    """What `status` shows of a pod's isolation: its namespaces (kernel ids) and uid."""
    if sandbox is None:
        return {"isolated": False, "app_pid": pid, "uid": os.getuid(), "namespaces": "host (shared)"}
    app = app_pid(pid) if pid is not None else None
    namespaces: dict[str, str] = {}
    if app is not None and sandbox.seen is not None and sandbox.seen[0] == app:
        namespaces = sandbox.seen[1]
    elif app is not None:
        for kind in NAMESPACE_KINDS:
            with contextlib.suppress(OSError):
                namespaces[kind] = os.readlink(f"/proc/{app}/ns/{kind}")
        # Cached only once the pod is in every namespace of its own: a PID 1 read between the
        # zygote's fork and its last unshare still shows the supervisor's mount namespace, and
        # caching that would show the pod sharing the host's for the rest of its life.
        settled = all(namespaces.get(kind) != _own_namespace(kind) for kind in NAMESPACE_KINDS)
        if len(namespaces) == len(NAMESPACE_KINDS) and settled:
            sandbox.seen = (app, namespaces)
    uid = sandbox.uid if sandbox.uid is not None else os.getuid()
    return {"isolated": True, "app_pid": app, "uid": uid, "namespaces": namespaces}
