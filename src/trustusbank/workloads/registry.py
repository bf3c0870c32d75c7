"""Every workload `trustusbank serve` can start, with the modules that make up its image.

A workload's "image" is the set of modules its build runs; their bytes give the
build's digest (see `trustusbank.images`). Builds of one image that differ in
behaviour live in different modules, so a rug pull changes bytes, not a flag.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp

from trustusbank.paths import data_file
from trustusbank.workloads.errors import WorkloadConfigError


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
    modules: tuple[str, ...]
    # variant -> extra modules of that build; the last module named is its entry point
    variants: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"default": ()})

    @property
    def default_variant(self) -> str:
        return next(iter(self.variants))

    def image_modules(self, variant: str) -> tuple[str, ...]:
        """The modules whose bytes make this build, shared ones first."""
        return (*self.modules, *self.variants[variant])

    def entry_module(self, variant: str) -> str:
        return self.image_modules(variant)[-1]

    def db_path(self, config: ServeConfig) -> Path:
        return config.db or data_file(f"{self.name}.sqlite3")

    def build(self, variant: str | None = None, db: Path | None = None) -> MCPServer | ASGIApp:
        return self.factory(self, ServeConfig(variant=variant or self.default_variant, db=db))

    def app(self, variant: str | None = None, db: Path | None = None) -> ASGIApp:
        """The ASGI app `serve` runs; MCP servers speak streamable HTTP at /mcp."""
        built = self.build(variant, db)
        if isinstance(built, MCPServer):
            from trustusbank.workloads.mcp_http import streamable_http_app

            return streamable_http_app(built, service=self.name, namespace=self.namespace)
        return built


def _bank_server(workload: Workload, config: ServeConfig) -> MCPServer:
    from trustusbank.workloads.bank.db import BankDB

    module = importlib.import_module(workload.entry_module(config.variant))
    return module.build(BankDB(workload.db_path(config)))


def _converter_server(workload: Workload, config: ServeConfig) -> MCPServer:
    from trustusbank.workloads.vendor.converter import ConverterConfig

    module = importlib.import_module(workload.entry_module(config.variant))
    return module.build(ConverterConfig.from_env())


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
    from trustusbank.agents.scripted.model import ScriptedModel

    try:
        gullibility = from_env()
    except ValueError as exc:
        raise WorkloadConfigError(str(exc)) from exc
    model = ScriptedModel(gullibility=gullibility)
    return create_app(model, served_model_names=[model.model])


def _agent_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.agents.model.types import ModelConfigError
    from trustusbank.agents.runtime.server import app_from_env

    try:
        return app_from_env()
    except (ModelConfigError, ValueError) as exc:
        raise WorkloadConfigError(str(exc)) from exc


def _chatbot_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.workloads.chatbot.app import create_app_from_env

    return create_app_from_env()


def _registry_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.workloads.agentregistry.app import create_app_from_env

    return create_app_from_env(workload.db_path(config))


def _soc_inbox_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.workloads.soc_inbox.app import create_app_from_env

    return create_app_from_env(workload.db_path(config))


def _alerts_app(workload: Workload, config: ServeConfig) -> ASGIApp:
    from trustusbank.alerts.app import create_app_from_env

    try:
        return create_app_from_env()
    except ValueError as exc:
        raise WorkloadConfigError(str(exc)) from exc


def _package_modules(*packages: str) -> tuple[str, ...]:
    """Every module of these packages, sorted: an image built from whole packages."""
    found: list[str] = []
    for name in packages:
        package = importlib.import_module(name)
        found += [m.name for m in pkgutil.walk_packages(package.__path__, f"{name}.")]
    return tuple(sorted(found))


_BANK_COMMON = (
    "trustusbank.workloads.mcp_http",
    "trustusbank.workloads.bank.db",
    "trustusbank.workloads.bank.seed_data",
    "trustusbank.workloads.bank.ids",
)
_CONVERTER_COMMON = (
    "trustusbank.workloads.mcp_http",
    "trustusbank.workloads.vendor.converter",
    "trustusbank.workloads.vendor.rates",
)
_V = "trustusbank.workloads.vendor"

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "account-mcp",
            "trustusbank-bank-mcp",
            8000,
            "MCP: get_balance, get_profile",
            _bank_server,
            (*_BANK_COMMON, "trustusbank.workloads.bank.account_mcp"),
        ),
        Workload(
            "transaction-mcp",
            "trustusbank-bank-mcp",
            8000,
            "MCP: list_recent, get_details, flag_suspicious",
            _bank_server,
            (*_BANK_COMMON, "trustusbank.workloads.bank.transaction_mcp"),
        ),
        Workload(
            "ticket-mcp",
            "trustusbank-bank-mcp",
            8000,
            "MCP: create_ticket, notify_human",
            _bank_server,
            (*_BANK_COMMON, "trustusbank.workloads.bank.ticket_mcp"),
        ),
        Workload(
            "currency-converter",
            "trustusbank-bank-vendors",
            8000,
            "MCP (third party): convert_currency",
            _converter_server,
            _CONVERTER_COMMON,
            variants={
                "clean": (f"{_V}.build_clean",),
                "mock-rugpull": (f"{_V}.exfil_channel", f"{_V}.build_mock_rugpull"),
                "real-rugpull": (f"{_V}.exfil_channel", f"{_V}.build_real_rugpull"),
            },
        ),
        Workload(
            "mock-attacker",
            "external-attacker",
            8080,
            "the attacker's C2 receiver (POST /exfil)",
            _attacker_app,
            ("trustusbank.workloads.attacker.app", "trustusbank.workloads.attacker.store"),
        ),
        Workload(
            "fx-api",
            "external-fx",
            8080,
            "frankfurter-compatible FX rates API",
            _fx_app,
            ("trustusbank.workloads.fx_api", "trustusbank.workloads.vendor.rates"),
        ),
        Workload(
            "agentregistry",
            "trustusbank-platform",
            8080,
            "catalogue of MCP servers (DORA Art. 28 register)",
            _registry_app,
            ("trustusbank.workloads.agentregistry.app", "trustusbank.workloads.agentregistry.catalogue"),
        ),
        Workload(
            "model",
            "trustusbank-bank-agents",
            8080,
            "scripted model (a simulation): OpenAI- and Anthropic-compatible API",
            _model_app,
            _package_modules("trustusbank.agents.scripted", "trustusbank.agents.model"),
        ),
        Workload(
            "agent",
            "trustusbank-bank-agents",
            8080,
            "a kagent Agent served over A2A (spec in TRUSTUSBANK_AGENT_SPEC)",
            _agent_app,
            _package_modules("trustusbank.agents.runtime", "trustusbank.agents.model"),
        ),
        Workload(
            "chatbot",
            "trustusbank-bank-frontend",
            8080,
            "customer chat page and /api/a2a/<ns>/<agent>/ proxy",
            _chatbot_app,
            _package_modules("trustusbank.workloads.chatbot"),
        ),
        Workload(
            "soc-inbox",
            "trustusbank-observability",
            8080,
            "the SOC's mailbox: SMTP in (TRUSTUSBANK_SMTP_PORT, 2525), page and /api/messages out",
            _soc_inbox_app,
            _package_modules("trustusbank.workloads.soc_inbox"),
        ),
        Workload(
            "alerts",
            "trustusbank-observability",
            8080,
            "alert evaluator: the PrometheusRules over the mesh's and agents' metrics, mailed to the SOC",
            _alerts_app,
            _package_modules("trustusbank.alerts"),
        ),
    )
}
