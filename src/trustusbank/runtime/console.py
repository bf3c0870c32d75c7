"""The operator's console as the runtime runs it: sockets bound here, one managed process serving them.

The supervisor binds each page's socket itself (the dashboard's, the sessions console's where
that exists, the alerts page's, the SOC inbox's and the agent registry's, which the console
relays to their pods, and the sign-in provider's unless the sign-in is off) and passes them
to `trustusbank console serve`, which it keeps alive as it keeps pods alive. With
port-forwards on, each page asks for its seed port (18001, 18007, 18002, 18012, 18006,
15556); a port another program holds is said, as a port-forward says it, and the page is
served on a free port instead, so the console is never missing, only elsewhere. With
port-forwards off (the tests) every page is on a free port. Either way the URLs are known
before the process starts, and stay the same across its restarts: `status["console"]`
records them.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.console.pages import Page
from trustusbank.console.serve import pages, url_of
from trustusbank.env import STATE_DIR
from trustusbank.runtime.podspec import http_ready
from trustusbank.runtime.processes import EventSink, ManagedProcess
from trustusbank.workloads.serving import PortInUse, bind

HOST = "127.0.0.1"
NAME = "console"


@dataclass
class Bound:
    page: Page
    sock: socket.socket
    asked: int | None  # the port it asked for (its seed port), None for any free one
    note: str = ""  # why it is not on the port it asked for

    def __post_init__(self) -> None:
        self.url = url_of(self.sock)  # said in the status file after the socket is closed, too


def _bind(page: Page, port: int | None) -> Bound:
    if port is None:
        return Bound(page, bind(HOST, 0), None)
    try:
        return Bound(page, bind(HOST, port), port)
    except PortInUse as exc:
        sock = bind(HOST, 0)
        return Bound(page, sock, port, f"{exc}; served on {url_of(sock)}{page.path} instead")


@dataclass
class ConsoleProcess:
    bound: list[Bound]
    process: ManagedProcess

    async def start(self) -> None:
        await self.process.start()

    async def stop(self) -> None:
        await self.process.stop()
        for b in self.bound:
            b.sock.close()

    def status(self) -> dict[str, Any]:
        return {
            "pid": self.process.pid,
            "ready": self.process.ready,
            "restarts": self.process.restarts,
            "pages": [
                {
                    "name": b.page.name,
                    "seed_port": b.asked,
                    "url": f"{b.url}{b.page.path}",
                    "note": b.note,
                }
                for b in self.bound
            ],
        }


def open_console(files: ClusterFiles, seed_ports: dict[str, int] | None, events: EventSink) -> ConsoleProcess:
    """Bind the console's sockets and prepare its process (not started). `seed_ports`: the port each
    page asks for by name (its seed port when port-forwards are on); None: free ports."""
    bound = [_bind(page, None if seed_ports is None else seed_ports.get(page.name)) for page in pages()]
    fds = {b.page.name: b.sock.fileno() for b in bound}
    command = [sys.executable, "-m", "trustusbank", "console", "serve"]
    command += [arg for name, fd in fds.items() for arg in (f"--{name}-fd", str(fd))]
    dashboard = bound[0]

    async def probe() -> bool:
        return await http_ready(f"{dashboard.url}/healthz")

    process = ManagedProcess(
        name=NAME,
        command=command,
        env={**os.environ, STATE_DIR.name: str(files.state)},
        log_file=files.logs / "console.log",
        probe=probe,
        events=events,
        pass_fds=tuple(fds.values()),
    )
    return ConsoleProcess(bound, process)


def seed_ports() -> dict[str, int]:
    return {page.name: page.seed_port for page in pages()}
