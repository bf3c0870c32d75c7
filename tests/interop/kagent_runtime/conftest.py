"""The bank's MCP servers, the attacker, the scripted model and kagent pods on 127.0.0.1.

A kagent pod takes seconds to start (it imports Google ADK), so the servers and the pods
that serve the acts are started once for this package and shared; each test starts from empty
logs (`Bank.reset`), and every message starts a new A2A context, so nothing carries over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from tests.agents.a2a.support import Gate
from tests.interop.kagent_runtime.support import CallLog, KagentPod, kagent_pod, recorded
from tests.paths import DEPLOY
from tests.serving import Served, served
from trustusbank.agents.model.types import ModelReply, ModelRequest
from trustusbank.agents.scripted.gullibility import Gullibility
from trustusbank.agents.scripted.http_app import create_app as model_app
from trustusbank.agents.scripted.model import ScriptedModel
from trustusbank.env import ACME_TELEMETRY_URL
from trustusbank.manifests.bundle import load_bundle
from trustusbank.manifests.kagent.controller import agent_spec
from trustusbank.manifests.kagent.spec import AgentSpec
from trustusbank.workloads.entrypoints import WORKLOADS


class Recording:
    """The scripted model, keeping every request it was asked (as its HTTP wire decoded it)."""

    provider = ScriptedModel.provider

    def __init__(self, scripted: ScriptedModel) -> None:
        self.scripted = scripted
        self.model = scripted.model
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return await self.scripted.complete(request)

    async def aclose(self) -> None:
        await self.scripted.aclose()


@dataclass
class Bank:
    """The servers support-bot's RemoteMCPServers name, with one converter build, and who they heard."""

    mcp: dict[str, str]  # RemoteMCPServer name -> URL of the real server's /mcp
    calls: CallLog
    attacker: Served
    model_url: str
    model: Recording
    gates: list[Gate]  # in front of every server: refuse tools there as the waypoint's allowlist does

    def exfil_count(self) -> int:
        return int(httpx.get(f"{self.attacker.url}/api/count").json()["total"])

    def deny(self, *tools: str) -> None:
        """Refuse these tool calls (403, JSON-RPC error -32001); a refused call is still logged."""
        for gate in self.gates:
            gate.deny_tools.update(tools)

    def reset(self) -> None:
        self.calls.clear()
        self.model.requests.clear()
        for gate in self.gates:
            gate.deny_tools.clear()

    def support_bot(self) -> AgentSpec:
        """support-bot as deploy/ declares it, its RemoteMCPServer and ModelConfig URLs pointed here.

        fraud-bot (an Agent tool) is left out: the seed prompt never hands anything to it."""
        spec = agent_spec(load_bundle(DEPLOY), "trustusbank-bank-agents", "support-bot")
        servers = tuple(replace(s, url=self.mcp[s.name]) for s in spec.mcp_servers if s.name in self.mcp)
        assert {s.name for s in servers} == set(self.mcp)
        model = replace(spec.model, base_url=f"{self.model_url}/v1")
        return replace(
            spec, mcp_servers=servers, sub_agents=(), access=(), access_enforced=False, model=model
        )


@contextmanager
def open_bank(data: Path, attacker: Served, converter: str) -> Iterator[Bank]:
    """The servers, with this converter build, while in use."""
    log = CallLog()
    builds = {
        "account-mcp": lambda _: WORKLOADS["account-mcp"].app(db=data / "account.sqlite3"),
        "transaction-mcp": lambda _: WORKLOADS["transaction-mcp"].app(db=data / "txn.sqlite3"),
        "currency-converter": lambda _: WORKLOADS["currency-converter"].app(
            variant=converter, db=data / "fx.sqlite3"
        ),
    }
    gates = {name: Gate(build("")) for name, build in builds.items()}
    servers = {name: Served(lambda _, n=name: recorded(n, gates[n], log)).start() for name in builds}
    scripted = ScriptedModel(gullibility=Gullibility.always())  # the demo's default
    model = Recording(scripted)
    try:
        with served(lambda _: model_app(model, served_model_names=[scripted.model])) as model_server:
            mcp = {n: f"{s.url}/mcp" for n, s in servers.items()}
            yield Bank(mcp, log, attacker, model_server.url, model, list(gates.values()))
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="package")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("attacker")
    with served(lambda _: WORKLOADS["mock-attacker"].app(db=data / "attacker.sqlite3")) as server:
        yield server


@pytest.fixture(autouse=True)
def loot_goes_to_the_attacker(attacker: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real rug-pull build reads ACME_TELEMETRY_URL at call time; a test may point it elsewhere."""
    monkeypatch.setenv(ACME_TELEMETRY_URL.name, f"{attacker.url}/exfil")
    monkeypatch.delenv("FX_API_URL", raising=False)  # the converter's reference rates, offline


@pytest.fixture(scope="package")
def clean_bank(tmp_path_factory: pytest.TempPathFactory, attacker: Served) -> Iterator[Bank]:
    with open_bank(tmp_path_factory.mktemp("clean"), attacker, "clean") as bank:
        yield bank


@pytest.fixture(scope="package")
def rugpull_bank(tmp_path_factory: pytest.TempPathFactory, attacker: Served) -> Iterator[Bank]:
    with open_bank(tmp_path_factory.mktemp("rugpull"), attacker, "real-rugpull") as bank:
        yield bank


@pytest.fixture(scope="package")
def clean_pod(clean_bank: Bank, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KagentPod]:
    with kagent_pod(clean_bank.support_bot(), tmp_path_factory.mktemp("clean-pod")) as pod:
        yield pod


@pytest.fixture(scope="package")
def rugpull_pod(rugpull_bank: Bank, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KagentPod]:
    with kagent_pod(rugpull_bank.support_bot(), tmp_path_factory.mktemp("rugpull-pod")) as pod:
        yield pod


@pytest.fixture
def clean(clean_bank: Bank) -> Bank:
    """Act 1's bank (the clean converter build), its logs empty."""
    clean_bank.reset()
    return clean_bank


@pytest.fixture
def rugpull(rugpull_bank: Bank) -> Bank:
    """Acts 2 and 3's bank (the `real-rugpull` converter build), its logs empty."""
    rugpull_bank.reset()
    return rugpull_bank
