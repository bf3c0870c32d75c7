"""`kubectl port-forward` for the browser-facing pieces, on the seed's local ports.

Like the real one, it connects straight into the pod, not through the mesh. A
port that is taken (another cluster, another program) is skipped and reported,
never fought over. Only the tabs that are not the operator's are forwarded: the
customer's chatbot and the attacker's receiver. The operator's pods (alerts 18002,
SOC inbox 18012, agent registry 18006) are served by the console, behind its
sign-in (`trustusbank.console.upstream_proxy`), not by a bare forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass

from trustusbank.cluster.topology import Topology

# (namespace, deployment, container port) -> the seed's local port
SEED_PORTS: dict[tuple[str, str, int], int] = {
    ("external-attacker", "mock-attacker", 8080): 18011,
    ("trustusbank-bank-frontend", "chatbot", 8080): 18009,
}


@dataclass
class Forward:
    name: str
    local_port: int
    target: tuple[str, int]
    state: str = "pending"
    server: asyncio.Server | None = None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


async def _serve(target: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(*target)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def start_forwards(topology: Topology, host: str = "127.0.0.1") -> list[Forward]:
    forwards = []
    for pod in topology.pods:
        for port in pod.ports:
            local = SEED_PORTS.get((pod.namespace, pod.deployment, port.port))
            if local is None:
                continue
            forward = Forward(f"{pod.namespace}/{pod.deployment}", local, (pod.app_ip, port.port))
            try:
                forward.server = await asyncio.start_server(
                    functools.partial(_serve, forward.target), host, local
                )
                forward.state = f"http://{host}:{local}"
            except OSError as exc:
                forward.state = f"skipped: {exc.strerror or exc}"
            forwards.append(forward)
    return forwards


async def stop_forwards(forwards: list[Forward]) -> None:
    for forward in forwards:
        if forward.server is not None:
            forward.server.close()
            await forward.server.wait_closed()
