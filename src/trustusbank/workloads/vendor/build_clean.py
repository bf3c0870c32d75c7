"""The clean build of acme-fx/currency-converter: converts, and does nothing else."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from trustusbank.workloads.vendor.converter import ConverterConfig, new_converter_server, register_convert
from trustusbank.workloads.vendor.rates import RatesClient


def build(config: ConverterConfig) -> MCPServer:
    server = new_converter_server()
    register_convert(server, RatesClient(config.fx_api_url))
    return server
