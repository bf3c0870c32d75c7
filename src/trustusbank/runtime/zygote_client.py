"""The supervisor's side of the pod zygote: start it, ask it for pods, follow each pod it forked.

A pod forked by the zygote is the zygote's child, not the supervisor's, so the supervisor
cannot wait for it. `ForkedProcess` gives the supervisor the same view an
`asyncio.subprocess.Process` would: its pid, its exit status (the zygote reports it on
the pod's own channel), and whether it has exited as the kernel sees it (its pidfd).

Fail closed: whatever goes wrong with the zygote (it never said ready, it died, it
refused a request) raises `ZygoteUnavailable`, and the caller starts a fresh interpreter
instead and says so in the runtime log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustusbank.errors import UnavailableError
from trustusbank.runtime.zygote import MAX_REQUEST, READY

# What the zygote is started with of the supervisor's environment: what Python needs to find
# and import its modules. Every pod is given its own environment when it is forked, and the
# zygote's memory (which every pod is a copy of) holds nothing else of the supervisor's.
ZYGOTE_ENV = (
    "PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPYCACHEPREFIX",
    "VIRTUAL_ENV",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
)
REPLY_TIMEOUT = 30.0
KILLED = -signal.SIGKILL  # a child whose zygote died: its death signal killed it


class ZygoteUnavailable(UnavailableError, RuntimeError):
    """The zygote cannot start this pod; start a fresh interpreter instead."""


@dataclass(frozen=True)
class ForkRequest:
    """What a pod's process is, for the zygote: `trustusbank <argv>` with this env, in `cwd`,
    with `fds` at the same numbers, and in `sandbox` (podinit's spec) when isolated."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path | None
    fds: tuple[int, ...] = ()
    sandbox: dict[str, Any] | None = None

    @classmethod
    def of_command(
        cls, command: list[str], env: dict[str, str], cwd: Path | None, fds: tuple[int, ...] = ()
    ) -> ForkRequest | None:
        """The request for a `python -m trustusbank ...` command line; None for any other."""
        if command[:3] != [sys.executable, "-m", "trustusbank"]:
            return None
        return cls(command[3:], env, cwd, fds)

    def encode(self) -> bytes:
        cwd = str(self.cwd) if self.cwd is not None else os.getcwd()
        body = {
            "argv": self.argv,
            "env": self.env,
            "cwd": cwd,
            "fds": list(self.fds),
            "sandbox": self.sandbox,
        }
        return json.dumps(body).encode()


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await done
    finally:
        loop.remove_reader(fd)


class ForkedProcess:
    """A pod the zygote forked, as the supervisor sees it (pid, returncode, wait)."""

    def __init__(self, pid: int, channel: socket.socket, pidfd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._channel = channel
        self._pidfd = pidfd
        self._ended = asyncio.ensure_future(self._follow())

    def has_exited(self) -> bool:
        if self.returncode is not None:
            return True
        return bool(select.select([self._pidfd], [], [], 0)[0])

    async def _follow(self) -> int:
        try:
            await _readable(self._channel.fileno())
            message = self._channel.recv(MAX_REQUEST)
        except OSError:
            message = b""
        code = json.loads(message)["exit"] if message else None
        if code is None:  # the zygote is gone, and with it (its death signal) the child
            await _readable(self._pidfd)
            code = KILLED
        self.returncode = int(code)
        self._channel.close()
        os.close(self._pidfd)
        return self.returncode

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)


class ZygoteClient:
    """One zygote per supervisor: started early, asked for each pod, closed last."""

    def __init__(self, proc: asyncio.subprocess.Process, control: socket.socket, log_file: Path) -> None:
        self.proc = proc
        self.control = control
        self.log_file = log_file
        self.down: str | None = None  # why it can no longer fork, once it cannot

    @classmethod
    async def start(cls, log_file: Path, timeout: float) -> ZygoteClient:  # noqa: ASYNC109
        """Start the zygote and wait until it has imported what pods share and said ready."""
        client = await cls.launch(log_file)
        await client.ready(timeout)
        return client

    @classmethod
    async def launch(cls, log_file: Path) -> ZygoteClient:
        """Start the zygote without waiting for it: it imports while the caller does other work."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_file.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "trustusbank.runtime.zygote", str(theirs.fileno())),
                    env={k: v for k, v in os.environ.items() if k in ZYGOTE_ENV},
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    start_new_session=True,
                    pass_fds=(theirs.fileno(),),
                )
        except OSError as exc:
            ours.close()
            raise ZygoteUnavailable(f"the zygote did not start: {exc}") from exc
        finally:
            theirs.close()
        return cls(proc, ours, log_file)

    async def ready(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait for the zygote's `ready`; a zygote that does not say it in time is stopped."""
        assert self.proc.stdout is not None
        try:
            said = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            said = b""
        if said != READY:
            await self.stop()
            raise ZygoteUnavailable(
                f"the zygote never said ready (exit {self.proc.returncode}); see {self.log_file}"
            )

    def alive(self) -> bool:
        if self.down is None and self.proc.returncode is not None:
            self.down = f"the zygote exited ({self.proc.returncode}); see {self.log_file}"
        return self.down is None

    async def spawn(self, request: ForkRequest, log_file: Path) -> ForkedProcess:
        if not self.alive():
            raise ZygoteUnavailable(self.down)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with log_file.open("ab") as log:
                self.control.settimeout(REPLY_TIMEOUT)
                socket.send_fds(
                    self.control, [request.encode()], [theirs.fileno(), log.fileno(), *request.fds]
                )
            theirs.close()
            ours.setblocking(False)
            await asyncio.wait_for(_readable(ours.fileno()), REPLY_TIMEOUT)
            data, fds, _, _ = socket.recv_fds(ours, MAX_REQUEST, 1)
        except (OSError, TimeoutError) as exc:
            ours.close()
            theirs.close()
            self.down = f"the zygote did not answer: {exc or type(exc).__name__}"
            # It may yet fork this pod: killed, it takes any child with it (their death signal), so
            # the fresh interpreter started instead is the pod's only process.
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            raise ZygoteUnavailable(self.down) from exc
        reply = json.loads(data) if data else {"error": "the zygote closed the pod's channel"}
        if "pid" not in reply or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            ours.close()
            raise ZygoteUnavailable(str(reply.get("error", reply)))
        return ForkedProcess(int(reply["pid"]), ours, fds[0])

    async def stop(self, timeout: float = 5) -> None:  # noqa: ASYNC109 - grace period before SIGKILL
        """Close the control channel (the zygote leaves when it reads the end), then reap it."""
        self.down = self.down or "the zygote was stopped"
        self.control.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
