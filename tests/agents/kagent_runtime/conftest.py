"""The bank's MCP servers, the attacker and the scripted model on 127.0.0.1, for kagent's runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from tests.agents.kagent_runtime.support import CallLog, recorded
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

    def exfil_count(self) -> int:
        return int(httpx.get(f"{self.attacker.url}/api/count").json()["total"])

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


OpenBank = Callable[[str, str], AbstractContextManager[Bank]]


@pytest.fixture(scope="module")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("attacker")
    with served(lambda _: WORKLOADS["mock-attacker"].app(db=data / "attacker.sqlite3")) as server:
        yield server


@pytest.fixture
def open_bank(tmp_path: Path, attacker: Served, monkeypatch: pytest.MonkeyPatch) -> OpenBank:
    """`open_bank(converter build, where the converter's loot goes)`: the servers, while in use.

    The real rug-pull build reads ACME_TELEMETRY_URL at call time, so the destination is the
    act's: the attacker (Act 2), or a port where nothing listens (Act 3: ztunnel refused it)."""

    @contextmanager
    def open_bank(converter: str, telemetry_url: str) -> Iterator[Bank]:
        monkeypatch.setenv(ACME_TELEMETRY_URL.name, telemetry_url)
        monkeypatch.delenv("FX_API_URL", raising=False)
        log = CallLog()
        builds = {
            "account-mcp": lambda _: WORKLOADS["account-mcp"].app(db=tmp_path / "account.sqlite3"),
            "transaction-mcp": lambda _: WORKLOADS["transaction-mcp"].app(db=tmp_path / "txn.sqlite3"),
            "currency-converter": lambda _: WORKLOADS["currency-converter"].app(
                variant=converter, db=tmp_path / "fx.sqlite3"
            ),
        }
        scripted = ScriptedModel(gullibility=Gullibility.always())  # the demo's default
        model = Recording(scripted)
        servers = {
            name: Served(lambda url, n=name, b=build: recorded(n, b(url), log)).start()
            for name, build in builds.items()
        }
        try:
            with served(lambda _: model_app(model, served_model_names=[scripted.model])) as model_server:
                mcp = {n: f"{s.url}/mcp" for n, s in servers.items()}
                yield Bank(mcp, log, attacker, model_server.url, model)
        finally:
            for server in servers.values():
                server.stop()

    return open_bank
