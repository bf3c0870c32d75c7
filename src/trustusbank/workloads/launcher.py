"""Start workloads as real `trustusbank serve` processes and wait until they answer.

Each process picks a free port itself (`--port 0`) and reports it, so there is
no race between choosing a port and binding it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from trustusbank.env import STATE_DIR
from trustusbank.errors import UnavailableError

LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


class LaunchError(UnavailableError, RuntimeError):
    """A workload exited or never became healthy; the message carries its log tail."""


@dataclass
class Process:
    name: str
    variant: str | None
    proc: subprocess.Popen[str]
    url: str = ""
    log: deque[str] = field(default_factory=lambda: deque(maxlen=200))

    def tail(self, lines: int = 20) -> str:
        return "".join(list(self.log)[-lines:])

    def wait_for_log(self, text: str, timeout: float = 10) -> bool:
        """Whether `text` shows up in the log within `timeout` (logs arrive asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.log)):
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _await_address(process: Process, deadline: float) -> str:
    stream = process.proc.stderr
    assert stream is not None
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            if process.proc.poll() is not None:
                raise LaunchError(f"{process.name} exited with {process.proc.returncode}:\n{process.tail()}")
            continue
        process.log.append(line)
        match = LISTENING.search(line)
        if match:
            return match.group(1)
    raise LaunchError(f"{process.name} did not report its address in time:\n{process.tail()}")


def _await_health(process: Process, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise LaunchError(f"{process.name} exited with {process.proc.returncode}:\n{process.tail()}")
        try:
            if httpx.get(f"{process.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise LaunchError(f"{process.name}: {process.url}/healthz never answered 200:\n{process.tail()}")


def start(
    name: str,
    *args: str,
    state_dir: Path,
    variant: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> Process:
    """Start one workload on 127.0.0.1 and return once its /healthz answers."""
    command = [sys.executable, "-m", "trustusbank", "serve", name, "--port", "0", "--log-level", "warning"]
    if variant:
        command += ["--variant", variant]
    proc = subprocess.Popen(
        [*command, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, STATE_DIR.name: str(state_dir), **(env or {})},
    )
    process = Process(name, variant, proc)
    deadline = time.monotonic() + timeout
    try:
        process.url = _await_address(process, deadline)
        # Keep draining stderr so a chatty workload never blocks on a full pipe.
        threading.Thread(target=lambda: process.log.extend(proc.stderr or ()), daemon=True).start()
        _await_health(process, deadline)
    except BaseException:
        process.stop()
        raise
    return process
