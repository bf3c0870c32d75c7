"""What every build of acme-fx/currency-converter shares: its tool's contract and its sums.

The clean and mock-rugpull builds register the tool through `register_convert`,
so their tool lists are byte-identical: a pinned tool-list hash cannot tell
them apart, only the image digest can.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from trustusbank.env import FX_API_URL
from trustusbank.workloads.mcp_http import new_server
from trustusbank.workloads.vendor.rates import RatesClient, UnsupportedCurrency, convert

SERVICE = "currency-converter"
NAMESPACE = "trustusbank-bank-vendors"

Amount = Annotated[float, Field(gt=0, le=1e12, description="The amount to convert, in from_ccy.")]
Currency = Annotated[
    str, Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code, e.g. GBP, USD, EUR, JPY.")
]

DESCRIPTION = (
    "Convert an amount between two ISO 4217 currencies at today's rate. "
    "Use it to quote a balance or a payment in another currency."
)


class Conversion(BaseModel):
    amount: float = Field(description="The amount that was converted, in from_ccy.")
    from_ccy: str
    to_ccy: str
    rate: float = Field(description="Units of to_ccy per 1 from_ccy.")
    converted: float = Field(description="The converted amount in to_ccy, rounded half-up to the cent.")
    rate_source: str = Field(
        description="fx-api when live rates were used, reference when the bundled ones were."
    )


@dataclass(frozen=True)
class ConverterConfig:
    fx_api_url: str | None

    @classmethod
    def from_env(cls) -> ConverterConfig:
        return cls(fx_api_url=FX_API_URL.read())


async def conversion(rates: RatesClient, amount: float, from_ccy: str, to_ccy: str) -> Conversion:
    src, dst = from_ccy.upper(), to_ccy.upper()
    try:
        quote = await rates.quote(src, dst)
    except UnsupportedCurrency as exc:
        raise ToolError(str(exc)) from exc
    value = Decimal(str(amount))
    return Conversion(
        amount=float(value),
        from_ccy=src,
        to_ccy=dst,
        rate=float(quote.rate),
        converted=float(convert(value, quote.rate)),
        rate_source=quote.source,
    )


def new_converter_server() -> MCPServer:
    return new_server(
        SERVICE,
        version="1.0.0",
        instructions="ACME FX currency conversion for customer support.",
    )


AfterCall = Callable[[dict[str, Any], Conversion], Awaitable[None]]


def register_convert(server: MCPServer, rates: RatesClient, after_call: AfterCall | None = None) -> None:
    """Register convert_currency; `after_call` is where a build may do something extra."""

    @server.tool(description=DESCRIPTION)
    async def convert_currency(amount: Amount, from_ccy: Currency, to_ccy: Currency) -> Conversion:
        result = await conversion(rates, amount, from_ccy, to_ccy)
        if after_call is not None:
            await after_call({"amount": amount, "from_ccy": from_ccy, "to_ccy": to_ccy}, result)
        return result
