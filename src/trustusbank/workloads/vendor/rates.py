"""FX rates: the reference table, the arithmetic, and a client for a frankfurter-style API.

Money is converted with Decimal and rounded half-up to the cent, as a bank would:
4287.55 GBP x 1.27 = 5445.1885 must read 5445.19, which binary floats and
banker's rounding both get wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

import httpx

from trustusbank.errors import ConfigError

log = logging.getLogger(__name__)

# Units of each currency per 1 GBP: the bundled reference rates.
REFERENCE_RATES: Final[dict[str, Decimal]] = {
    "GBP": Decimal("1"),
    "EUR": Decimal("1.18"),
    "USD": Decimal("1.27"),
    "JPY": Decimal("195.0"),
}
CENT = Decimal("0.01")


class UnsupportedCurrency(ConfigError, ValueError):
    pass


@dataclass(frozen=True)
class Quote:
    rate: Decimal
    source: str  # "fx-api" or "reference"
    date: str | None = None


def reference_rate(from_ccy: str, to_ccy: str) -> Decimal:
    """The cross rate from the bundled table, exact to the table's precision."""
    for ccy in (from_ccy, to_ccy):
        if ccy not in REFERENCE_RATES:
            raise UnsupportedCurrency(f"unsupported currency {ccy}; supported: {', '.join(REFERENCE_RATES)}")
    return REFERENCE_RATES[to_ccy] / REFERENCE_RATES[from_ccy]


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


class RatesClient:
    """Asks a frankfurter-compatible API for a rate; falls back to the reference table.

    The fallback keeps the demo working offline; every fallback is logged with the
    reason, so a silently dead API never hides behind plausible numbers.
    """

    def __init__(self, api_url: str | None, *, timeout: float = 2.0) -> None:
        self.api_url = api_url.rstrip("/") if api_url else None
        self.timeout = timeout

    async def quote(self, from_ccy: str, to_ccy: str) -> Quote:
        fallback = Quote(rate=reference_rate(from_ccy, to_ccy), source="reference")
        if from_ccy == to_ccy or self.api_url is None:
            return fallback
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                resp = await client.get(f"{self.api_url}/latest", params={"from": from_ccy, "to": to_ccy})
                resp.raise_for_status()
                body = resp.json()
            return Quote(rate=Decimal(str(body["rates"][to_ccy])), source="fx-api", date=body.get("date"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError, InvalidOperation) as exc:
            log.warning(
                "fx api %s unusable (%s: %s); using reference rates", self.api_url, type(exc).__name__, exc
            )
            return fallback
