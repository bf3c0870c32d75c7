"""Every workload `trustusbank serve` can start: its namespace, port and how to build its app.

This is each container's entry point. What the image is made of (its modules, its builds)
is `images.builds`; here each build's entry module is imported and turned into an app.
Importing this module imports none of them, nor the MCP SDK: `serve --help` lists the
workloads from here, and each one's libraries load when it is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trustusbank.images.builds import BUILDS, ImageBuilds
from trustusbank.paths import data_file
from trustusbank.workloads.errors import WorkloadConfigError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp


@dataclass(frozen=True)
class ServeConfig:
    variant: str
    db: Path | None = None


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    port: int
    summary: str
    # MCP workloads build an MCPServer (served at /mcp); the others build an ASGI app.
    factory: Callable[[Workload, ServeConfig], MCPServer | ASGIApp]

    @property
    def image(self) -> ImageBuilds:
        return BUILDS[self.name]

    @property
    def variants(self) -> dict[str, tuple[str, ...]]:
        return self.image.variants

    @property
    def default_variant(self) -> str:
        return self.image.default_variant

    def entry_module(self, variant: str) -> str:
        return self.image.entry_module(variant)

    def db_path(self, config: ServeConfig) -> Path:
        return config.db or data_file(f"{self.name}.sqlite3")

    def build(self, variant: str | None = None, db: Path | None = None) -> MCPServer | ASGIApp:
        return self.factory(self, ServeConfig(variant=variant or self.default_variant, db=db))

    def app(self, variant: str | None = None, db: Path | None = None) -> ASGIApp:
        """The ASGI app `serve` runs; MCP servers speak streamable HTTP at /mcp."""
        from mcp.server.mcpserver import MCPServer

        built = self.build(variant, db)
        if isinstance(built, MCPServer):
            from trustusbank.workloads.mcp_http import streamable_http_app

            return streamable_http_app(built, service=self.name, namespace=self.namespace)
        return built


def _bank_server(workload: Workload, config: ServeConfig) -> MCPServer:
    from trustusbank.workloads.bank.db import BankDB

    module = importlib.import_module(workload.entry_module(config.variant))
    server: MCPServer = module.build(BankDB(workload.db_path(config)))
    return server


def _converter_server(workload: Workload, config: ServeConfig) -> MCPServer:
    from trustusbank.workloads.vendor.converter import ConverterConfig

    module = importlib.import_module(workload.entry_module(config.variant))
    server: MCPServer = module.build(ConverterConfig.from_env())
    return server


def _attacker_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.workloads.attacker.app import create_app
    from trustusbank.workloads.attacker.store import EventStore

    return create_app(EventStore(workload.db_path(config)))


def _fx_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.workloads.fx_api import create_app

    return create_app()


def _model_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.agents.scripted.gullibility import from_env
    from trustusbank.agents.scripted.http_app import create_app
    from trustusbank.agents.scripted.model import SERVED_MODELS, ScriptedModel

    try:
        gullibility = from_env()
    except ValueError as exc:
        raise WorkloadConfigError(str(exc)) from exc
    # One model, two names: a request naming trustusbank-compromised gets the compromised behaviour.
    return create_app(ScriptedModel(gullibility=gullibility), served_model_names=SERVED_MODELS)


def _agent_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.agents.a2a.server import app_from_env
    from trustusbank.agents.model.types import ModelConfigError

    try:
        return app_from_env()
    except (ModelConfigError, ValueError) as exc:
        raise WorkloadConfigError(str(exc)) from exc


def _chatbot_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.workloads.chatbot.app import create_app_from_env

    return create_app_from_env()


def _registry_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.workloads.agentregistry.app import create_app_from_env

    return create_app_from_env(workload.db_path(config), WORKLOADS)


def _soc_inbox_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.workloads.soc_inbox.app import create_app_from_env

    return create_app_from_env(workload.db_path(config))


def _alerts_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.alerts.app import create_app_from_env

    try:
        return create_app_from_env()
    except ValueError as exc:
        raise WorkloadConfigError(str(exc)) from exc


def _guard_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.mesh.guard.app import create_app_from_env

    return create_app_from_env(workload.db_path(config))


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("account-mcp", "trustusbank-bank-mcp", 8000, "MCP: get_balance, get_profile", _bank_server),
        Workload(
            "transaction-mcp",
            "trustusbank-bank-mcp",
            8000,
            "MCP: list_recent, get_details, flag_suspicious",
            _bank_server,
        ),
        Workload(
            "ticket-mcp", "trustusbank-bank-mcp", 8000, "MCP: create_ticket, notify_human", _bank_server
        ),
        Workload(
            "currency-converter",
            "trustusbank-bank-vendors",
            8000,
            "MCP (third party): convert_currency",
            _converter_server,
        ),
        Workload(
            "mock-attacker",
            "external-attacker",
            8080,
            "the attacker's C2 receiver (POST /exfil)",
            _attacker_app,
        ),
        Workload("fx-api", "external-fx", 8080, "frankfurter-compatible FX rates API", _fx_app),
        Workload(
            "agentregistry",
            "trustusbank-platform",
            8080,
            "catalogue of MCP servers (DORA Art. 28 register)",
            _registry_app,
        ),
        Workload(
            "mcp-guard",
            "trustusbank-platform",
            8080,
            "the waypoint's MCP guard: tool pins, pinned schemas, quarantine, data flow",
            _guard_app,
        ),
        Workload(
            "model",
            "trustusbank-bank-agents",
            8080,
            "scripted model (a simulation): OpenAI- and Anthropic-compatible API",
            _model_app,
        ),
        Workload(
            "agent",
            "trustusbank-bank-agents",
            8080,
            "a kagent Agent served over A2A (spec in TRUSTUSBANK_AGENT_SPEC)",
            _agent_app,
        ),
        Workload(
            "chatbot",
            "trustusbank-bank-frontend",
            8080,
            "customer chat page and /api/a2a/<ns>/<agent>/ proxy",
            _chatbot_app,
        ),
        Workload(
            "soc-inbox",
            "trustusbank-observability",
            8080,
            "the SOC's mailbox: SMTP in (TRUSTUSBANK_SMTP_PORT, 2525), page and /api/messages out",
            _soc_inbox_app,
        ),
        Workload(
            "alerts",
            "trustusbank-observability",
            8080,
            "alert evaluator: the PrometheusRules over the mesh's and agents' metrics, mailed to the SOC",
            _alerts_app,
        ),
    )
}
