"""The pod zygote: one interpreter that has imported what every pod needs, forking a child per pod.

`python -m trustusbank.runtime.zygote <fd>`: the supervisor starts it with one end of a
socket pair (`<fd>`) and nothing else to talk to: no path, no name another process could
reach. It imports the modules the pods share (mcp, a2a, starlette, uvicorn, cryptography,
CEL, ...), refuses to serve if that started a thread (a fork copies only the forking
thread), says `ready`, then for each request forks a child that does what a fresh
`python -m trustusbank ...` would: its own session, its log file as stdout and stderr, the
pod's environment and directory, and the `trustusbank` entry point run in this interpreter.
An isolated pod's child is forked just after the zygote unshares a PID namespace (which
only its next child enters), so it is born the pod's PID 1, and does what podinit does for
one (`podinit.pid_1`: network, mount, UTS and IPC namespaces, root, uid) before the entry
point; the zygote then returns to its own PID namespace. No podinit process stays outside:
the zygote reaps the pod, and the pod's lifeline is a pipe whose write end the zygote holds.
The children share the preloaded pages copy-on-write: that is where start-up time and
memory are won.

Each request carries its own socket pair end, the pod's channel: the zygote answers there
with the child's pid (and a pidfd, so the supervisor can tell a dead child from a live one
without being its parent), then with its exit status. The zygote dies with the supervisor,
and every child dies with the zygote: a supervisor that sees the channel close without a
status knows the child is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import traceback
from typing import Any, NoReturn

from trustusbank.kernel.syscalls import CLONE_NEWPID, die_with_parent, setns, unshare
from trustusbank.runtime import podinit

# What the pods share, imported once here. A module that fails to import is left to the
# pods that need it (they import it themselves, as a fresh interpreter would).
PRELOAD = (
    "trustusbank.cli.app",
    "trustusbank.workloads.entrypoints",
    "trustusbank.workloads.mcp_http",
    "trustusbank.workloads.serving",
    "trustusbank.agents.a2a.server",
    "trustusbank.mesh.ztunnel.node",
    "trustusbank.mesh.waypoint.process",
    "trustusbank.mesh.guard.app",
    "mcp.server.mcpserver",
    "a2a.server.routes",
    "a2a.server.request_handlers",
    "a2a.client",
    "cel",
    "opentelemetry.sdk.trace",
    "cryptography.x509",
    "starlette.applications",
    "uvicorn",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.loops.asyncio",
    "httpx",
    "pydantic",
    "anyio._backends._asyncio",
    "concurrent.futures.thread",
    "sqlite3",
    "email.message",
    "smtplib",
    "importlib_resources",
    "rich.console",
    "trustusbank.cli.serve_cmd",
    "trustusbank.cli.mesh_cmd",
    "trustusbank.images.pull",
    "trustusbank.images.store",
    "trustusbank.sqlite_file",
    "trustusbank.agents.model",
    "trustusbank.alerts.app",
    # What pods still imported after the fork, by `PYTHONPROFILEIMPORTTIME` in their logs: each
    # one imported here is shared instead of built again in every pod that needs it.
    "typer._click.decorators",
    "typer._adapters",
    "rich._emoji_codes",
    "rich.logging",
    "importlib_resources.future.adapters",
    "cryptography.hazmat.backends.openssl.backend",
    "trustusbank.agents.model.factory",
    "trustusbank.agents.scripted.model",
    "trustusbank.agents.scripted.http_app",
    "trustusbank.workloads.bank.db",
    "trustusbank.workloads.vendor.converter",
    "trustusbank.workloads.soc_inbox.app",
    "trustusbank.workloads.agentregistry.app",
    "trustusbank.console.serve",
    "trustusbank.console.dashboard",
    "trustusbank.console.trace_page",
    "trustusbank.console.chat_pages",
    "trustusbank.console.agent_chat",
    "trustusbank.console.signin.chain",
    "trustusbank.workloads.chatbot.app",
    "trustusbank.workloads.attacker.app",
    "trustusbank.workloads.fx_api",
    "trustusbank.workloads.vendor.exfil_channel",
    "trustusbank.workloads.bank.ids",
    "encodings.idna",
)
MAX_REQUEST = 1 << 20
MAX_FDS = 64
READY = b"ready\n"
CHILD_FAILED = 126  # as podinit: the pod could not be started


def preload(names: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import what the pods share; return what could not be imported, with why."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a pod that needs it will say so itself
            missing.append(f"{name}: {exc}")
    return missing


def _run_entry_point(argv: list[str]) -> NoReturn:
    """`python -m trustusbank <argv>`, in this interpreter; never returns."""
    code = 0
    try:
        sys.argv = ["trustusbank", *argv]
        sys.path[0] = os.getcwd()  # as `python -m` puts the working directory first
        runpy.run_module("trustusbank", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code)


def _above(fd: int, lowest: int = 1000) -> int:
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)


def _place_fds(received: list[int], targets: list[int], also: list[int]) -> None:
    """Put the log (`received[0]`) on 1 and 2, /dev/null on 0, each other passed descriptor at
    the number it was given as (a node proxy's `--netns ref=<fd>`); close all else the zygote had."""
    null = os.open(os.devnull, os.O_RDONLY)
    moved = [_above(fd) for fd in (null, *received)]  # off any number a target may need
    os.dup2(moved[0], 0, inheritable=True)
    os.dup2(moved[1], 1, inheritable=True)
    os.dup2(moved[1], 2, inheritable=True)
    for fd, target in zip(moved[2:], targets, strict=True):
        os.dup2(fd, target, inheritable=True)
    keep = {0, 1, 2, *targets, *also}
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in keep:
            with contextlib.suppress(OSError):
                os.close(int(name))


def _child(request: dict[str, Any], received: list[int], zygote: int, lifeline: int | None) -> NoReturn:
    """The pod's process, as `python -m trustusbank ...` (or podinit) would have started it.

    Sandboxed (`lifeline` given), it was forked straight into a new PID namespace: it is the
    pod's PID 1, and does the rest of what podinit does for one before running the entry point.
    """
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        gc.enable()
        os.setsid()
        if lifeline is None:  # (PID 1 has no parent in its namespace to compare: its lifeline tells)
            die_with_parent(signal.SIGKILL, zygote)  # the pod ends with the zygote, as with its supervisor
        _place_fds(received, list(request["fds"]), [] if lifeline is None else [lifeline])
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sandbox = request.get("sandbox")
        if sandbox is None or lifeline is None:
            _run_entry_point(list(request["argv"]))
        podinit.pid_1({**sandbox, "argv": list(request["argv"])}, lifeline, _run_entry_point)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            print(f"zygote: cannot start the pod: {exc}", file=sys.stderr, flush=True)
        os._exit(CHILD_FAILED)


class Zygote:
    """The zygote's loop: requests on the control channel, exits reaped and reported."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.channels: dict[int, socket.socket] = {}  # child pid -> its pod channel
        self.lifelines: dict[int, int] = {}  # sandboxed child pid -> the write end of its lifeline
        # Opened before any unshare: /proc/self/ns/pid is the namespace the zygote itself is in.
        self.own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)

    def serve(self) -> int:
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to be woken: reaped below
        self.selector.register(self.control, selectors.EVENT_READ, "control")
        self.selector.register(self.wake_read, selectors.EVENT_READ, "wake")
        while True:
            for key, _ in self.selector.select():
                if key.data == "wake":
                    os.read(self.wake_read, 512)
                    self._reap()
                elif key.data == "control" and not self._request():
                    return 0  # the supervisor closed its end: nothing more will be asked
                elif isinstance(key.data, int):
                    self._forget(key.data)
            self._reap()  # a SIGCHLD that came between select() and the handler is not lost

    def _request(self) -> bool:
        try:
            data, fds, _, _ = socket.recv_fds(self.control, MAX_REQUEST, MAX_FDS)
        except InterruptedError:
            return True
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        if not fds:
            return True  # nowhere to answer: a malformed request is dropped
        channel = socket.socket(fileno=fds[0])
        try:
            request = json.loads(data)
            if len(fds) - 2 != len(request["fds"]):
                raise ValueError("descriptors and their numbers do not match")
            self._fork(request, channel, fds[1:])
        except Exception as exc:
            with contextlib.suppress(OSError):
                channel.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            channel.close()
        finally:
            for fd in fds[1:]:
                os.close(fd)
        return True

    def _fork(self, request: dict[str, Any], channel: socket.socket, received: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        me = os.getpid()
        sandboxed = request.get("sandbox") is not None
        lifeline = held = -1
        if sandboxed:  # its child (only) is born PID 1 of a new PID namespace: no podinit in between
            lifeline, held = os.pipe()  # the zygote holds the write end: EOF tells the pod it is gone
            try:
                unshare(CLONE_NEWPID)
            except OSError:
                os.close(lifeline)
                os.close(held)
                raise
        try:
            pid = os.fork()
        finally:
            if sandboxed and os.getpid() == me:
                self._own_pid_namespace()
        if pid == 0:
            self._let_go(channel)
            _child(request, received, me, lifeline if sandboxed else None)
        if sandboxed:
            os.close(lifeline)
            self.lifelines[pid] = held
        pidfd = os.pidfd_open(pid)  # before any reaping: it names this child, not a reused pid
        try:
            socket.send_fds(channel, [json.dumps({"pid": pid}).encode()], [pidfd])
        except OSError:
            pass  # the supervisor gave up on it; the child runs, its exit is reaped as any
        finally:
            os.close(pidfd)
        self.channels[pid] = channel
        self.selector.register(channel, selectors.EVENT_READ, pid)

    def _own_pid_namespace(self) -> None:
        """Children born from here on are in the zygote's own PID namespace again; if that cannot
        be had, the zygote must not fork another thing: it leaves (its pods with it)."""
        try:
            if self.own_pid_ns is None:
                self.own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            setns(self.own_pid_ns, CLONE_NEWPID)
        except OSError as exc:
            print(
                f"zygote: cannot return to its own PID namespace, leaving: {exc}", file=sys.stderr, flush=True
            )
            os._exit(4)

    def _let_go(self, channel: socket.socket) -> None:
        """In a child: the zygote's sockets are not its own. Detached, their numbers are closed
        once by `_place_fds`, never again by a socket object collected later."""
        self.selector.close()
        for sock in (self.control, channel, *self.channels.values()):
            sock.detach()

    def _forget(self, pid: int) -> None:
        """The supervisor closed a pod's channel: no one to tell of its exit."""
        channel = self.channels.pop(pid, None)
        if channel is not None:
            self.selector.unregister(channel)
            channel.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            held = self.lifelines.pop(pid, None)
            if held is not None:
                os.close(held)
                code = 128 - code if code < 0 else code  # as podinit reports a pod a signal ended
            channel = self.channels.get(pid)
            if channel is not None:
                with contextlib.suppress(OSError):
                    channel.send(json.dumps({"exit": code}).encode())
                self._forget(pid)


def main(args: list[str]) -> int:
    if len(args) != 1:
        print("usage: python -m trustusbank.runtime.zygote <control fd>", file=sys.stderr)
        return 2
    control = socket.socket(fileno=int(args[0]))
    die_with_parent(signal.SIGKILL)  # the zygote ends with its supervisor
    gc.disable()  # no collection while preloading: it would only scatter what it frees
    for missing in preload():
        print(f"zygote: not preloaded (pods import it themselves): {missing}", file=sys.stderr)
    gc.freeze()  # what was preloaded is never scanned again: a child's collections leave those pages shared
    gc.enable()
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        print(f"zygote: refusing to fork: preloading started threads {threads}", file=sys.stderr)
        return 3
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    return Zygote(control).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
