"""What each image is built from: the modules whose bytes make each build of it.

A workload's "image" is the set of modules its build runs; their bytes give the
build's digest (`images.digest`). Builds of one image that differ in behaviour live in
different modules, so a rug pull changes bytes, not a flag. This is data only: it names
modules without importing them, so the image store never loads the programs it describes.
"""

from __future__ import annotations

import functools
import importlib.util
import pkgutil
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageBuilds:
    name: str
    """The workload the image runs (`trustusbank serve <name>`)."""
    modules: tuple[str, ...] = ()
    # variant -> extra modules of that build; the last module named is its entry point
    variants: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"default": ()})
    packages: tuple[str, ...] = ()
    """Whole packages in the image, listed from disk only when a digest is taken (not at import)."""

    @property
    def default_variant(self) -> str:
        return next(iter(self.variants))

    def image_modules(self, variant: str) -> tuple[str, ...]:
        """The modules whose bytes make this build, shared ones first."""
        return (*self.modules, *package_modules(*self.packages), *self.variants[variant])

    def entry_module(self, variant: str) -> str:
        return self.image_modules(variant)[-1]


@functools.cache
def package_modules(*packages: str) -> tuple[str, ...]:
    """Every module of these packages, sorted: an image built from whole packages.

    Found on disk, not imported, so listing an image never runs its code."""
    found: list[str] = []
    for name in packages:
        found += _walk(name)
    return tuple(sorted(found))


def _walk(package: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"package {package} of an image cannot be found")
    found: list[str] = []
    for info in pkgutil.iter_modules(list(spec.submodule_search_locations), f"{package}."):
        found.append(info.name)
        if info.ispkg:
            found += _walk(info.name)
    return found


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

BUILDS: dict[str, ImageBuilds] = {
    b.name: b
    for b in (
        ImageBuilds(
            "account-mcp",
            (*_BANK_COMMON, "trustusbank.workloads.bank.account_mcp"),
        ),
        ImageBuilds(
            "transaction-mcp",
            (*_BANK_COMMON, "trustusbank.workloads.bank.transaction_mcp"),
        ),
        ImageBuilds(
            "ticket-mcp",
            (*_BANK_COMMON, "trustusbank.workloads.bank.ticket_mcp"),
        ),
        ImageBuilds(
            "currency-converter",
            _CONVERTER_COMMON,
            variants={
                "clean": (f"{_V}.build_clean",),
                "mock-rugpull": (f"{_V}.exfil_channel", f"{_V}.build_mock_rugpull"),
                "real-rugpull": (f"{_V}.exfil_channel", f"{_V}.payload", f"{_V}.build_real_rugpull"),
            },
        ),
        ImageBuilds(
            "mock-attacker",
            ("trustusbank.workloads.attacker.app", "trustusbank.workloads.attacker.store"),
        ),
        ImageBuilds(
            "fx-api",
            ("trustusbank.workloads.fx_api", "trustusbank.workloads.vendor.rates"),
        ),
        ImageBuilds(
            "agentregistry",
            (
                "trustusbank.workloads.agentregistry.app",
                "trustusbank.workloads.agentregistry.catalogue",
                "trustusbank.workloads.agentregistry.inspect",
                "trustusbank.workloads.agentregistry.view",
            ),
        ),
        ImageBuilds(
            "mcp-guard",
            packages=("trustusbank.mesh.guard",),
        ),
        ImageBuilds(
            "model",
            packages=("trustusbank.agents.scripted", "trustusbank.agents.model"),
        ),
        ImageBuilds(
            "agent",
            packages=("trustusbank.agents.a2a", "trustusbank.agents.model"),
        ),
        ImageBuilds(
            "chatbot",
            packages=("trustusbank.workloads.chatbot",),
        ),
        ImageBuilds(
            "soc-inbox",
            packages=("trustusbank.workloads.soc_inbox",),
        ),
        ImageBuilds(
            "alerts",
            packages=("trustusbank.alerts",),
        ),
    )
}
