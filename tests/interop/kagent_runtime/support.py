"""kagent's own agent runtime (kagent-adk on Google ADK) as a process, and what it did on the wire.

kagent-adk cannot be imported here (it needs mcp<2 and a2a-sdk 0.3; see requirements.txt),
so it runs as a pod runs it: its own Python (`TRUSTUSBANK_KAGENT_PYTHON`, else
`.venv-kagent/bin/python`), reading the config.json and agent-card.json kagent's controller
would render, serving A2A on a socket bound here. The tests skip when that Python is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.paths import REPO
from trustusbank.manifests.kagent.spec import AgentSpec
from trustusbank.workloads.serving import bind

POD = Path(__file__).with_name("pod.py")
PYTHON_ENV = "TRUSTUSBANK_KAGENT_PYTHON"


def kagent_python() -> Path:
    """The interpreter with kagent-adk installed; skips the test when there is none."""
    configured = os.environ.get(PYTHON_ENV)
    python = Path(configured) if configured else REPO / ".venv-kagent" / "bin" / "python"
    if not python.exists():
        why = (
            f"kagent-adk is not installed: set {PYTHON_ENV} or create .venv-kagent "
            "(tests/interop/kagent_runtime/requirements.txt says how; .ci/run does it)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(why)  # CI installs it: a missing runtime there is a broken set-up, not a skip
        pytest.skip(why)
    return python


def kagent_versions(python: Path) -> dict[str, str]:
    """The versions of the runtime's packages, as that interpreter reports them."""
    names = ["kagent-adk", "google-adk", "a2a-sdk", "mcp", "openai"]
    script = (
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run([str(python), "-c", script, *names], capture_output=True, text=True, check=True)
    versions = json.loads(out.stdout)
    assert isinstance(versions, dict)
    return versions


# --- what kagent's controller renders -------------------------------------------------------------


def rendered_config(spec: AgentSpec, *, stream: bool = False) -> dict[str, Any]:
    """config.json as kagent's controller renders it for a Declarative Agent (go/api/adk AgentConfig):
    the system message as `instruction`, the ModelConfig as `model`, one `http_tools` entry per
    RemoteMCPServer (streamable HTTP) with the Agent's toolNames."""
    if spec.model.provider != "openai":
        raise ValueError(f"{spec.ref}: only an OpenAI ModelConfig is rendered here")
    if spec.sub_agents:
        raise ValueError(f"{spec.ref}: remote agents are not rendered here")
    return {
        "model": {"type": "openai", "model": spec.model.model, "base_url": spec.model.base_url or ""},
        "description": spec.description,
        "instruction": spec.system_message,
        "http_tools": [
            {
                "params": {"url": s.url, "headers": {}, "timeout": s.timeout_seconds},
                "tools": list(s.tool_names),
            }
            for s in spec.mcp_servers
        ],
        "stream": stream,
    }


def rendered_card(spec: AgentSpec, url: str) -> dict[str, Any]:
    """agent-card.json: the A2A card the controller writes beside config.json."""
    return {
        "name": spec.name.replace("-", "_"),
        "description": spec.description,
        "url": f"{url}/",
        "version": "",
        "capabilities": {"streaming": True, "pushNotifications": False, "stateTransitionHistory": True},
        "defaultInputModes": ["text"],
        "defaultOutputModes": ["text"],
        "skills": [],
    }


# --- the pod --------------------------------------------------------------------------------------


@dataclass
class KagentPod:
    url: str
    process: subprocess.Popen[bytes]
    log: Path  # the pod's stdout and stderr


@contextmanager
def kagent_pod(
    spec: AgentSpec, config_dir: Path, *, stream: bool = False, api_key: str | None = "unused"
) -> Iterator[KagentPod]:
    """kagent-adk serving `spec` on 127.0.0.1; yielded once its app has started.

    The pod says "ready" on a pipe of its own, not on stdout: its logs go to a file, so
    no pipe can fill up and stall it however much it logs."""
    python = kagent_python()
    sock = bind("127.0.0.1", 0)
    sock.listen(64)  # a client's connection waits in the backlog until uvicorn accepts it
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.json").write_text(json.dumps(rendered_config(spec, stream=stream)))
    (config_dir / "agent-card.json").write_text(json.dumps(rendered_card(spec, url)))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(config_dir),
        "KAGENT_NAME": spec.name,
        "KAGENT_NAMESPACE": spec.namespace,
        "KAGENT_URL": "http://127.0.0.1:9",  # the controller; never called with build(local=True)
        "OTEL_SDK_DISABLED": "true",
        "NO_PROXY": "127.0.0.1",
    }
    if api_key is not None:
        env["OPENAI_API_KEY"] = api_key  # from the ModelConfig's apiKeySecret, on a cluster
    log = config_dir / "pod.log"
    ready_read, ready_write = os.pipe()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(python), str(POD), str(config_dir), str(sock.fileno()), str(ready_write)],
            pass_fds=[sock.fileno(), ready_write],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    os.close(ready_write)  # the pod holds the only writer: EOF here means it died before it was ready
    try:
        with os.fdopen(ready_read, "rb") as ready:
            said = ready.readline()
        if said.strip() != b"ready":
            process.wait(timeout=30)
            raise AssertionError(f"kagent-adk did not start:\n{log.read_text()[-4000:]}")
        yield KagentPod(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        sock.close()


# --- A2A ------------------------------------------------------------------------------------------


REPLY_TIMEOUT = 120.0  # seconds for a whole agent run: generous, a bound on a hang, not a measure


async def send_message(url: str, text: str) -> dict[str, Any]:
    """A2A `message/send` (JSON-RPC, protocol 0.3, which kagent-adk 0.10 serves): the Task it returns."""
    request = {
        "jsonrpc": "2.0",
        "id": uuid.uuid4().hex,
        "method": "message/send",
        "params": {
            "message": {
                "kind": "message",
                "role": "user",
                "messageId": uuid.uuid4().hex,
                "parts": [{"kind": "text", "text": text}],
            }
        },
    }
    async with httpx.AsyncClient(timeout=REPLY_TIMEOUT) as client:
        response = await client.post(f"{url}/", json=request)
    response.raise_for_status()
    body = response.json()
    assert "error" not in body, body
    task = body["result"]
    assert isinstance(task, dict)
    return task


def task_text(task: dict[str, Any]) -> str:
    """The agent's final answer: the text of the task's artifacts."""
    texts = [
        part["text"]
        for artifact in task.get("artifacts", [])
        for part in artifact.get("parts", [])
        if part.get("kind") == "text"
    ]
    return "".join(texts)


# --- the MCP side ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallSeen:
    server: str
    tool: str
    arguments: dict[str, Any]


@dataclass
class CallLog:
    """Every `tools/call` the MCP servers received, in arrival order, across servers."""

    calls: list[ToolCallSeen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: ToolCallSeen) -> None:
        with self._lock:
            self.calls.append(call)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def names(self) -> list[str]:
        with self._lock:
            return [c.tool for c in self.calls]


def recorded(server: str, app: ASGIApp, log: CallLog) -> ASGIApp:
    """`app`, with every JSON-RPC `tools/call` it is sent written to `log` before it is served."""

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("method") == "tools/call":
            params = parsed.get("params") or {}
            log.record(ToolCallSeen(server, str(params.get("name")), dict(params.get("arguments") or {})))
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return recording
