"""`kubectl rollout restart` for the embedded cluster: a control request the supervisor serves.

A rollout restart replaces a Deployment's pods with fresh ones made from the
same template; a fresh pod pulls its image tag again, which is how a moved
tag reaches a running system without anyone editing a manifest. The embedded
pods keep their addresses, so the old process is stopped before the new one
starts (a Recreate rollout, not a surge). The new process is a new pod, not a
crash: no backoff, no restart count.

Requests travel as JSON lines over an owner-only Unix socket next to
istiod's; the supervisor answers with progress lines, then one result, once
the new pods are ready (or are not, with their log tail).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.errors import OperationError
from trustusbank.runtime.processes import ManagedProcess

log = logging.getLogger("trustusbank.runtime")

MAX_LINE = 1 << 20
OP_RESTART = "rollout-restart"

Progress = Callable[[str], None]


class RolloutError(OperationError, RuntimeError):
    """The restart could not be made, or its pods did not become ready; `log_tail` says why."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class Restarted:
    deployment: str
    pod: str
    old_pid: int | None
    new_pid: int | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RolloutHost(Protocol):
    """What the supervisor offers a rollout."""

    def deployment_pods(self, namespace: str, name: str) -> list[str]: ...

    async def replace_pod(
        self, ref: str, *, fresh_data: bool = False
    ) -> tuple[int | None, ManagedProcess]: ...

    def event(self, kind: str, fields: dict[str, object]) -> None: ...


class ControlServer:
    """The supervisor's side; one rollout at a time."""

    def __init__(self, host: RolloutHost, ready_timeout: float) -> None:
        self.host = host
        self.ready_timeout = ready_timeout
        self._lock = asyncio.Lock()

    async def serve(self, path: Path) -> asyncio.Server:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        server = await asyncio.start_unix_server(self._handle, path=str(path), limit=MAX_LINE)
        os.chmod(path, 0o600)
        return server

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(message: dict[str, Any]) -> None:
            writer.write(json.dumps(message).encode() + b"\n")
            await writer.drain()

        try:
            request = json.loads(await reader.readline())
            if not isinstance(request, dict) or request.get("op") != OP_RESTART:
                raise ValueError(f"unknown request {request!r}")
            async with self._lock:
                done = await self._restart(request, send)
            await send({"done": [r.to_dict() for r in done]})
        except RolloutError as exc:
            await send({"error": str(exc), "log_tail": exc.log_tail})
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("refused control request: %s", exc)
            await send({"error": f"bad request: {exc}"})
        except (ConnectionError, asyncio.IncompleteReadError):
            log.warning("control client went away")
        except Exception as exc:  # the client must hear why, whatever it was
            log.exception("control request failed")
            with contextlib.suppress(ConnectionError):
                await send({"error": f"{type(exc).__name__}: {exc}"})
        finally:
            writer.close()

    async def _restart(
        self, request: dict[str, Any], send: Callable[[dict[str, Any]], Any]
    ) -> list[Restarted]:
        deployment = str(request["deployment"])
        fresh_data = request.get("fresh_data", False) is True
        namespace, _, name = deployment.partition("/")
        who = {"actor": str(request.get("actor", "")), "command": str(request.get("command", ""))}
        refs = self.host.deployment_pods(namespace, name)
        if not refs:
            raise RolloutError(f"no pods of Deployment {deployment} are running")
        done = []
        for ref in refs:
            started = time.monotonic()
            await send({"progress": f"restarting {ref}"})
            try:
                old_pid, proc = await self.host.replace_pod(ref, fresh_data=fresh_data)
            except RuntimeError as exc:
                raise RolloutError(f"cannot restart {ref}: {exc}") from exc
            await send({"progress": f"{ref}: new pod started, waiting for it to be ready"})
            if not await proc.wait_ready(self.ready_timeout):
                tail = proc.tail()
                self.host.event("rollout-failed", {"deployment": deployment, "pod": ref, **who})
                raise RolloutError(f"{ref} did not become ready within {self.ready_timeout:.0f}s", tail)
            restarted = Restarted(deployment, ref, old_pid, proc.pid, round(time.monotonic() - started, 3))
            self.host.event(
                "rollout-restarted",
                {"deployment": deployment, "pod": ref, "old_pid": old_pid, "new_pid": proc.pid, **who},
            )
            await send({"progress": f"{ref} ready (pid {proc.pid})"})
            done.append(restarted)
        return done


async def rollout_restart(
    files: ClusterFiles,
    deployment: str,
    *,
    actor: str,
    command: str,
    progress: Progress,
    timeout: float,  # noqa: ASYNC109 - one overall deadline for a whole rollout
    fresh_data: bool = False,
) -> list[Restarted]:
    """Ask the running supervisor to restart `namespace/name`'s pods; returns once they are ready.

    With `fresh_data` the new pods start without the old ones' data files (their databases
    are seeded again), as a pod with a new, empty volume would."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(files.control_socket), limit=MAX_LINE)
    except OSError as exc:
        message = f"the cluster in {files.state} takes no control requests ({exc}); is it running?"
        raise RolloutError(message) from None
    try:
        request = {
            "op": OP_RESTART,
            "deployment": deployment,
            "actor": actor,
            "command": command,
            "fresh_data": fresh_data,
        }
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        async with asyncio.timeout(timeout):
            while line := await reader.readline():
                message = json.loads(line)
                if "progress" in message:
                    progress(str(message["progress"]))
                elif "error" in message:
                    raise RolloutError(str(message["error"]), str(message.get("log_tail", "")))
                else:
                    return [Restarted(**r) for r in message["done"]]
    except TimeoutError:
        raise RolloutError(f"the rollout of {deployment} did not finish within {timeout:.0f}s") from None
    finally:
        writer.close()
    raise RolloutError(f"the supervisor closed the connection during the rollout of {deployment}")
