"""Processes the runtime keeps alive: pods and node proxies, restarted with backoff.

A crash is never silent: every exit and every restart is an event in the
runtime log, with the exit code and the delay before the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trustusbank.runtime.zygote_client import ForkedProcess, ZygoteUnavailable

if TYPE_CHECKING:
    from trustusbank.runtime.zygote_client import ForkRequest, ZygoteClient

log = logging.getLogger("trustusbank.runtime")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
HEALTHY_RESET = 60.0

Probe = Callable[[], Awaitable[bool]]
Child = asyncio.subprocess.Process | ForkedProcess
EventSink = Callable[[str, dict[str, object]], None]


def has_exited(proc: Child) -> bool:
    """Whether the process has exited, as the kernel sees it.

    asyncio learns of an exit only once its child watcher has reaped the process and the
    event loop has run the callback; until then `returncode` is None for a process that is
    already dead. `waitid(WNOWAIT)` looks without reaping, so the watcher still gets the code.
    """
    if isinstance(proc, ForkedProcess):  # not our child: the kernel answers through its pidfd
        return proc.has_exited()
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # macOS before Python 3.13: asyncio's view is all there is
        return False
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # the child watcher has reaped it already
        return True


@dataclass
class ManagedProcess:
    """One supervised process: started, probed for readiness, restarted when it dies."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_file: Path
    probe: Probe
    events: EventSink
    cwd: Path | None = None
    pass_fds: tuple[int, ...] = ()  # descriptors the process inherits (a pod's network namespace)
    # Forked by the pod zygote when there is one (and `fork` says how); else `command` is run.
    zygote: ZygoteClient | None = None
    fork: ForkRequest | None = None
    restarts: int = 0
    ready: bool = False
    proc: Child | None = None
    _stopping: bool = False
    _stopped: Child | None = None  # the run that stop() ended, not a crash
    _waiting: Child | None = None  # the run _supervise awaits the exit of
    _ready_event: asyncio.Event = field(default_factory=asyncio.Event)
    _watch: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.returncode is None else None

    async def start(self) -> None:
        self._watch = asyncio.create_task(self._supervise(), name=f"supervise {self.name}")

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109 - one overall deadline
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready_event.wait(), timeout)
        return self.ready

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def _spawn(self) -> Child:
        if self.zygote is not None and self.fork is not None:
            try:
                return await self.zygote.spawn(self.fork, self.log_file)
            except ZygoteUnavailable as exc:  # fail closed: a fresh interpreter, said in the log
                self.events("zygote-fallback", {"process": self.name, "reason": str(exc)})
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_file.open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                *self.command,
                env=self.env,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                pass_fds=self.pass_fds,
            )
        finally:
            out.close()

    async def _await_ready(self, proc: Child) -> None:
        while proc.returncode is None and not self._stopping:
            try:
                if await self.probe():
                    self.ready = True
                    self._ready_event.set()
                    self.events("ready", {"process": self.name, "pid": proc.pid})
                    return
            except Exception as exc:  # a probe that errors is simply "not ready yet"
                log.debug("probe of %s failed: %s", self.name, exc)
            await asyncio.sleep(0.1)

    async def _supervise(self) -> None:
        backoff = BACKOFF_START
        while not self._stopping:
            started = time.monotonic()
            proc = self.proc = await self._spawn()
            forked = isinstance(proc, ForkedProcess)
            self.events(
                "started",
                {"process": self.name, "pid": proc.pid, "restarts": self.restarts, "forked": forked},
            )
            readiness = asyncio.create_task(self._await_ready(proc))
            self._waiting = proc
            try:
                code = await proc.wait()
            finally:
                self._waiting = None
                readiness.cancel()
            self.ready = False
            if proc is self._stopped:
                return
            # It exited on its own: a crash, recorded even when stop() has begun since (a pod
            # that dies as `up` gives up on it), but then not restarted.
            if self._stopping:
                self.events(
                    "crashed",
                    {
                        "process": self.name,
                        "exit_code": code,
                        "restart_in_s": None,
                        "restarts": self.restarts,
                    },
                )
                return
            if time.monotonic() - started > HEALTHY_RESET:
                backoff = BACKOFF_START
            self.restarts += 1
            self.events(
                "crashed",
                {"process": self.name, "exit_code": code, "restart_in_s": backoff, "restarts": self.restarts},
            )
            log.warning(
                "%s exited with %s; restarting in %.1fs (restart #%d)",
                self.name,
                code,
                backoff,
                self.restarts,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def stop(self, timeout: float = 10) -> None:  # noqa: ASYNC109 - grace period before SIGKILL
        """Stop it for good. Only the exit this causes is a stop: a process that had already
        died (even if asyncio has not noticed yet) crashed, and is recorded as crashed."""
        self._stopping = True
        proc = self.proc
        if proc is not None and not has_exited(proc):
            self._stopped = proc
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._watch is not None:
            # Awaiting a run's exit, _supervise records it (crashed, or not at all if stopped)
            # and returns; between runs (backing off, spawning) it is cancelled.
            if self._waiting is None:
                self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        self.events("stopped", {"process": self.name})
