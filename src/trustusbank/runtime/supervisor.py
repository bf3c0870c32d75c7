"""The embedded control plane: plan the cluster, run istiod, the node proxies and the pods.

Start order follows a real cluster's: identity first (istiod, a process of its
own as it is a pod in istio-system), then the node proxies (so no pod ever has
an uncaptured moment), then the pods. Stop order is the reverse; each of them
is restarted when it dies. Everything it knows is written to status.json,
which is how `status`, `up --detach` and `down` talk to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.cluster.ports import IN_POD_CAPTURE, METRICS_PORT, OUTBOUND_PORT
from trustusbank.cluster.subnet import allocate
from trustusbank.cluster.topology import Pod, Topology, plan
from trustusbank.cluster.watch import load_in_force
from trustusbank.console.pages import SIGNIN
from trustusbank.env import POD_ZYGOTE, PORT_FORWARDS, READY_TIMEOUT, STATE_DIR
from trustusbank.errors import UnavailableError
from trustusbank.images.signing import Keys
from trustusbank.images.store import ImageStore
from trustusbank.manifests.bundle import Bundle
from trustusbank.manifests.core import Deployment
from trustusbank.manifests.manifest import ManifestError
from trustusbank.mesh.identity.istiod import answers as istiod_answers
from trustusbank.mesh.identity.istiod import issue_node_token
from trustusbank.mesh.identity.istiod_process import caller_token_files
from trustusbank.runtime import podenv
from trustusbank.runtime.console import ConsoleProcess, open_console, seed_ports
from trustusbank.runtime.held_events import HeldEvents
from trustusbank.runtime.image_seed import SEED_ACTOR, seed
from trustusbank.runtime.isolation import COOPERATIVE, Isolation
from trustusbank.runtime.podspec import http_ready, launch_spec
from trustusbank.runtime.portforward import Forward, start_forwards, stop_forwards
from trustusbank.runtime.processes import ManagedProcess
from trustusbank.runtime.rollout import ControlServer
from trustusbank.runtime.sandbox import PodSandbox, make_sandboxes, pod_view
from trustusbank.runtime.user_tokens import provider_file_text
from trustusbank.runtime.zygote_client import ForkRequest, ZygoteClient, ZygoteUnavailable

log = logging.getLogger("trustusbank.runtime")


def ready_timeout() -> float:
    """How long a node proxy or pod may take to become ready before `up` gives up."""
    return READY_TIMEOUT.read()


Progress = Callable[[str], None]


class StartupFailed(UnavailableError, RuntimeError):
    """A node proxy or pod did not become ready; the message carries its log tail."""


ISTIOD = "istio-system/istiod"  # its name in events and status, as the pod's in a real cluster


class Supervisor:
    def __init__(
        self,
        files: ClusterFiles,
        deploy: Path,
        progress: Progress,
        isolation: Isolation | None = None,
        zygote: ZygoteClient | None = None,
    ) -> None:
        """`zygote`: one already launched (not yet ready), so its imports overlapped the caller's."""
        self.files = files
        self.isolation = isolation or Isolation(COOPERATIVE, "", "isolation was not prepared", False)
        self.sandboxes: dict[str, PodSandbox] = {}
        self.deploy = deploy
        self.progress = progress
        self.topology: Topology | None = None
        self.control_plane: dict[str, ManagedProcess] = {}  # istiod
        self.ztunnels: dict[str, ManagedProcess] = {}
        self.pods: dict[str, ManagedProcess] = {}
        self.forwards: list[Forward] = []
        self.console: ConsoleProcess | None = None
        self.user_tokens: str | None = None  # the sign-in provider, as agent pods are told of it
        self.phase = "Starting"
        self.settled = asyncio.Event()  # set once the cluster runs or has failed to start
        self.message = ""
        self.started_at = time.time()
        self.bundle: Bundle | None = None
        self.images: ImageStore | None = None
        self.image_ids: dict[str, str | None] = {}  # pod -> the digest its image tag resolved to at start
        self.zygote: ZygoteClient | None = None  # forks pods and node proxies, when it could start
        self._zygote_launched = zygote
        self._zygote_starting: asyncio.Task[ZygoteClient | None] | None = None
        self._zygote_watch: asyncio.Task[None] | None = None
        self.events = HeldEvents(files)
        self._status_stale = False

    # -- events and status -------------------------------------------------
    def event(self, kind: str, fields: dict[str, object]) -> None:
        self.events.record(kind, fields)  # held, not raised, while the disk is full
        if kind == "crashed":
            delay = fields["restart_in_s"]
            then = "not restarted: stopping" if delay is None else f"restarting in {delay}s"
            self.progress(f"{fields['process']} exited ({fields['exit_code']}); {then}")

    def write_status(self) -> None:
        topo = self.topology
        status: dict[str, Any] = {
            "phase": self.phase,
            "message": self.message,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "deploy": str(self.deploy.resolve()),
            "subnet": topo.subnet if topo else None,
            "isolation": self.isolation.to_dict(),
            "control_plane": [
                {
                    "name": name,
                    "pid": proc.pid,
                    "ready": proc.ready,
                    "restarts": proc.restarts,
                    "log": str(proc.log_file),
                }
                for name, proc in self.control_plane.items()
            ],
            "zygote_pid": self.zygote.proc.pid if self.zygote is not None else None,
            "nodes": [],
            "pods": [],
            "forwards": [
                {"name": f.name, "local_port": f.local_port, "state": f.state} for f in self.forwards
            ],
            "console": self.console.status() if self.console is not None else None,
        }
        if topo is not None:
            for node in topo.nodes:
                proc = self.ztunnels.get(node.name)
                status["nodes"].append(
                    {
                        "name": node.name,
                        "role": node.role,
                        "ip": node.ip,
                        "ztunnel_pid": proc.pid if proc else None,
                        "ready": bool(proc and proc.ready),
                        "restarts": proc.restarts if proc else 0,
                    }
                )
            for pod in topo.pods:
                proc = self.pods.get(pod.ref)
                sandbox = self.sandboxes.get(pod.ref)
                status["pods"].append(
                    {
                        "namespace": pod.namespace,
                        "name": pod.name,
                        "node": pod.node,
                        "ip": pod.ip,
                        "identity": pod.spiffe_uri(topo.trust_domain),
                        "ports": [p.port for p in pod.ports],
                        "image": pod.image,
                        "image_id": self.image_ids.get(pod.ref),
                        "pid": proc.pid if proc else None,
                        "ready": bool(proc and proc.ready),
                        "restarts": proc.restarts if proc else 0,
                        "log": str(self.files.pod_log(pod.namespace, pod.name)),
                        **pod_view(proc.pid if proc else None, sandbox),
                    }
                )
        tmp = self.files.status.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(status, indent=2))
            tmp.replace(self.files.status)
        except OSError as exc:  # a full disk: the cluster runs on; status.json is stale until it has room
            if not self._status_stale:
                log.error("status.json not written, the cluster runs on: %s", exc)
            self._status_stale = True
            return
        if self._status_stale:
            log.warning("status.json written again")
            self._status_stale = False

    # -- start -------------------------------------------------------------
    def _istiod(self) -> ManagedProcess:
        """istiod's CA, a fresh interpreter at first (the zygote is still importing), forked after."""
        command = [sys.executable, "-m", "trustusbank", "mesh", "istiod"]
        env = {**os.environ, STATE_DIR.name: str(self.files.state)}
        socket = self.files.istiod_socket

        async def probe() -> bool:
            return await istiod_answers(socket)

        return ManagedProcess(
            name=ISTIOD,
            command=command,
            env=env,
            log_file=self.files.istiod_log,
            probe=probe,
            events=self.event,
        )

    def _issue_tokens(self, topo: Topology) -> None:
        """A fresh credential per node proxy and waypoint, which istiod reads when it starts."""
        for path in caller_token_files(self.files, topo).values():
            issue_node_token(path)

    def _ztunnel(self, topo: Topology, node: str) -> ManagedProcess:
        ip = topo.node(node).ip
        env = {**os.environ, STATE_DIR.name: str(self.files.state)}
        mine = [s for s in self.sandboxes.values() if s.pod.node == node]
        netns = [arg for s in mine for arg in ("--netns", f"{s.pod.ref}={s.netns.fd}")]

        async def probe() -> bool:
            return await http_ready(f"http://{ip}:{METRICS_PORT}/healthz/ready")

        command = [
            *(sys.executable, "-m", "trustusbank", "mesh", "ztunnel"),
            *("--node", node, "--deploy", str(self.deploy.resolve())),
            *netns,
        ]
        fds = tuple(s.netns.fd for s in mine)
        return ManagedProcess(
            name=f"ztunnel/{node}",
            command=command,
            env=env,
            pass_fds=fds,
            log_file=self.files.ztunnel_log(node),
            probe=probe,
            events=self.event,
            zygote=self.zygote,
            fork=ForkRequest.of_command(command, env, None, fds),
        )

    def _waypoint(self, pod: Pod) -> ManagedProcess:
        """A Gateway's proxy: started like a pod, but it is a mesh component with its own SVID."""
        assert pod.gateway is not None

        async def probe() -> bool:
            return await http_ready(f"http://{pod.ip}:{METRICS_PORT}/healthz/ready")

        command = [
            *(sys.executable, "-m", "trustusbank", "mesh", "waypoint"),
            *("--gateway", pod.gateway, "--deploy", str(self.deploy.resolve())),
        ]
        env = {**os.environ, STATE_DIR.name: str(self.files.state)}
        return ManagedProcess(
            name=pod.ref,
            command=command,
            env=env,
            log_file=self.files.pod_log(pod.namespace, pod.name),
            probe=probe,
            events=self.event,
            zygote=self.zygote,
            fork=ForkRequest.of_command(command, env, None),
        )

    def _pod(self, topo: Topology, bundle: Bundle, ref: str) -> ManagedProcess:
        pod = topo.pod(ref)
        assert pod is not None
        if pod.role == "waypoint":
            return self._waypoint(pod)
        deployment = bundle.view("Deployment", pod.namespace, pod.deployment)
        assert isinstance(deployment, Deployment)
        ns = topo.namespaces.get(pod.namespace)
        sandbox = self.sandboxes.get(pod.ref)
        spec = launch_spec(
            pod,
            deployment,
            bundle,
            self.files.root,
            self.deploy,
            in_mesh=bool(ns and ns.ambient),
            image_store=self.files.images,
            in_pod_capture=sandbox is not None,
            user_tokens=self.user_tokens,
        )
        command, pass_fds = spec.command, tuple[int, ...]()
        fork = ForkRequest.of_command(spec.command, spec.env, spec.cwd)
        if sandbox is not None:
            podenv.write(self.files, pod.namespace, pod.name, spec.env)  # what `exec` runs with
            command, pass_fds = sandbox.command(spec.command, self.files, spec.cwd, spec.shared)
            if fork is not None:
                inside = sandbox.spec(spec.command, self.files, spec.cwd, spec.shared)
                fork = ForkRequest(fork.argv, fork.env, fork.cwd, pass_fds, inside)
        found = self.images.lookup(pod.image) if self.images is not None and pod.image else None
        self.image_ids[ref] = found.digest if found else None

        async def probe() -> bool:
            return await http_ready(spec.probe_url)

        return ManagedProcess(
            name=ref,
            command=command,
            env=spec.env,
            cwd=spec.cwd,
            pass_fds=pass_fds,
            log_file=self.files.pod_log(pod.namespace, pod.name),
            probe=probe,
            events=self.event,
            zygote=self.zygote,
            fork=fork,
        )

    def _fork_from_zygote(self, process: ManagedProcess) -> None:
        """Have the zygote fork a host process of the platform (the console), as it forks pods."""
        process.zygote = self.zygote
        process.fork = ForkRequest.of_command(process.command, process.env, process.cwd, process.pass_fds)

    async def _start_zygote(self) -> ZygoteClient | None:
        """The pod zygote, unless turned off; None (fresh interpreters, said in the log) if it fails."""
        client, self._zygote_launched = self._zygote_launched, None
        try:
            client = client or await ZygoteClient.launch(self.files.logs / "zygote.log")
            await client.ready(ready_timeout())
        except ZygoteUnavailable as exc:
            self.event("zygote-unavailable", {"reason": str(exc)})
            self.progress(f"pod zygote unavailable, starting fresh interpreters: {exc}")
            return None
        self.event("zygote-ready", {"pid": client.proc.pid})
        self._zygote_watch = asyncio.create_task(self._watch_zygote(client))
        return client

    async def _watch_zygote(self, client: ZygoteClient) -> None:
        """A zygote that dies while the cluster runs is in the runtime log (its pods restart fresh)."""
        code = await client.proc.wait()
        if self.phase != "Stopping":
            self.event("zygote-exited", {"pid": client.proc.pid, "exit_code": code})

    async def _start_all(self, group: dict[str, ManagedProcess], what: str) -> None:
        for proc in group.values():
            await proc.start()
        await self._wait_ready(group, what)

    async def _wait_ready(self, group: dict[str, ManagedProcess], what: str) -> None:
        limit = ready_timeout()
        waiting = {name: asyncio.create_task(proc.wait_ready(limit)) for name, proc in group.items()}
        for name, task in waiting.items():
            if not await task:
                proc = group[name]
                raise StartupFailed(f"{what} {name} did not become ready; last log lines:\n{proc.tail()}")
            self.progress(f"{what} {name} ready")
            self.write_status()

    async def start(self) -> None:
        files = self.files
        files.make()
        self.write_status()
        if POD_ZYGOTE.read():  # it imports while istiod and the image store start
            self._zygote_starting = asyncio.create_task(self._start_zygote())
        else:
            self.event("zygote-off", {"reason": f"{POD_ZYGOTE.name}=0"})
            if self._zygote_launched is not None:
                await self._zygote_launched.stop()
        subnet, self._claim = allocate(files.state)
        bundle = load_in_force(self.deploy, files)
        topo = self.topology = plan(bundle, subnet)
        self.bundle = bundle
        topo.save(files.topology)
        self.progress(f"planned {len(topo.pods)} pods on {len(topo.nodes)} nodes in 127.{subnet}.0.0/16")
        self.progress(f"isolation: {self.isolation.describe()}")
        self.sandboxes = make_sandboxes(self.isolation, topo)
        for sandbox in self.sandboxes.values():
            await sandbox.open_routes(capture=(IN_POD_CAPTURE, OUTBOUND_PORT))

        self._issue_tokens(topo)
        self.control_plane = {ISTIOD: self._istiod()}
        for proc in self.control_plane.values():
            await proc.start()  # it imports while the image store is seeded
        self.images = ImageStore(files.images)
        seeded = seed(self.images, Keys(files.signing, files.images), bundle)
        for pushed in [*seeded.added, *seeded.rebuilt]:
            kind = "image-seeded" if pushed.old_digest is None else "image-pushed"
            self.event(kind, {**pushed.to_dict(), "actor": SEED_ACTOR, "command": SEED_ACTOR})
        self.progress(
            f"image store: {len(seeded.added)} pushed, {len(seeded.rebuilt)} rebuilt, {len(seeded.kept)} kept"
        )

        if self._zygote_starting is not None:
            self.zygote = await self._zygote_starting
        await self._wait_ready(self.control_plane, "control plane")
        for proc in self.control_plane.values():
            self._fork_from_zygote(proc)  # its restarts: forked, as the node proxies are
        self.ztunnels = {node.name: self._ztunnel(topo, node.name) for node in topo.nodes}
        await self._start_all(self.ztunnels, "ztunnel")
        # The console's sockets are bound before the pods start: the sign-in provider's address is
        # the issuer of the ID tokens the console hands agents, and agent pods are told it.
        forwarding = PORT_FORWARDS.read()
        self.console = open_console(self.files, seed_ports() if forwarding else None, self.event)
        self._fork_from_zygote(self.console.process)
        self.user_tokens = self._user_tokens(self.console)
        self.pods = {pod.ref: self._pod(topo, bundle, pod.ref) for pod in topo.pods}
        await self._start_all(self.pods, "pod")
        if forwarding:
            self.forwards = await start_forwards(topo)
        await self._start_console(self.console)
        self._control = await ControlServer(self, ready_timeout()).serve(files.control_socket)
        self.phase = "Running"
        self.write_status()
        self.settled.set()

    def _user_tokens(self, console: ConsoleProcess) -> str | None:
        """What agent pods are told of the sign-in provider, if the console has one (sign-in on)."""
        issuer = next((b.url for b in console.bound if b.page.name == SIGNIN.name), None)
        return provider_file_text(self.files.state, issuer) if issuer is not None else None

    async def _start_console(self, console: ConsoleProcess) -> None:
        """The operator's console (18001, 18007, 18002, 18012, 18006): on the seed ports when
        forwarding, else free ones.

        It reads what the pods wrote, so it starts once they are ready. The cluster runs without
        it if it does not come up: `status` then says so, with its log."""
        for page in console.status()["pages"]:
            if page["note"]:
                self.progress(f"console {page['name']}: {page['note']}")
        await console.start()
        if await console.process.wait_ready(ready_timeout()):
            self.progress(f"console ready: {', '.join(p['url'] for p in console.status()['pages'])}")
        else:
            self.progress(f"console did not become ready; see {console.process.log_file}")
        self.write_status()

    # -- rollouts ----------------------------------------------------------
    def deployment_pods(self, namespace: str, name: str) -> list[str]:
        topo = self.topology
        if topo is None or self.phase != "Running":
            return []
        return [
            p.ref
            for p in topo.pods
            if (p.namespace, p.deployment) == (namespace, name) and p.role != "waypoint"
        ]

    async def replace_pod(self, ref: str, *, fresh_data: bool = False) -> tuple[int | None, ManagedProcess]:
        """A rollout restart of one pod: its process stops and a fresh one starts from the Deployment
        as it is *now* (the manifests in force, re-expanded by the kagent controller, so an applied
        ModelConfig change reaches the agent's rendered spec), pulling its image tag again. A new
        pod, so it starts with no restarts and no backoff.

        The new pod is planned before the old one stops: manifests that do not load, or a
        Deployment that is gone, refuse the restart and leave the running pod alone. With
        `fresh_data` the pod's data files go while no process has them open, so the new pod
        seeds its databases again."""
        if self.phase != "Running" or self.topology is None:
            raise RuntimeError(f"the cluster is {self.phase}")
        pod = self.topology.pod(ref)
        try:
            bundle = load_in_force(self.deploy, self.files)
        except (ManifestError, ValueError, KeyError) as exc:
            raise RuntimeError(
                f"the manifests in force do not load, so {ref} was left running: {exc}"
            ) from exc
        deployment = None if pod is None else bundle.view("Deployment", pod.namespace, pod.deployment)
        if pod is not None and pod.role != "waypoint" and deployment is None:
            raise RuntimeError(f"Deployment {pod.namespace}/{pod.deployment} is no longer in force")
        new = self._pod(self.topology, bundle, ref)
        old = self.pods[ref]
        old_pid = old.pid
        await old.stop()
        if fresh_data:
            namespace, _, name = ref.partition("/")
            data = self.files.pod_dir(namespace, name) / "state" / "data"
            for path in data.glob("*") if data.is_dir() else []:
                path.unlink()
        self.bundle = bundle
        self.pods[ref] = new
        await new.start()
        self.write_status()
        return old_pid, new

    async def stop(self) -> None:
        self.phase = "Stopping"
        self.write_status()
        if getattr(self, "_control", None) is not None:
            self._control.close()
            self.files.control_socket.unlink(missing_ok=True)
        if self.console is not None:
            await self.console.stop()
        await stop_forwards(self.forwards)
        await asyncio.gather(*(p.stop() for p in self.pods.values()))
        await asyncio.gather(*(z.stop() for z in self.ztunnels.values()))
        await asyncio.gather(*(c.stop() for c in self.control_plane.values()))
        if self._zygote_starting is not None:
            self.zygote = await self._zygote_starting  # started or not, never left running
        for zygote in (self.zygote, self._zygote_launched):
            if zygote is not None:
                await zygote.stop()
        for sandbox in self.sandboxes.values():
            sandbox.close()
        if getattr(self, "_claim", None) is not None:
            self._claim.close()
        self.phase = "Stopped"
        self.events.flush()  # a last try for what a full disk held
        self.write_status()

    async def run(self, stop: asyncio.Event) -> None:
        """Start, keep status fresh until `stop` is set, then stop everything.

        A failed start is published (phase Failed, which `up --detach` returns on) only once
        everything it started has stopped, every exit is in the runtime log and the pid file
        is gone: the state `up --detach` then reports is the end state, not a cluster half down.
        """
        failed = False
        try:
            await self.start()
            while not stop.is_set():
                self.events.flush()
                self.write_status()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        except Exception as exc:
            failed = True
            self.message = str(exc)
            self.settled.set()
            raise
        finally:
            await self.stop()
            if failed:
                self.files.pid.unlink(missing_ok=True)
                self.phase = "Failed"
                self.write_status()
