"""Amounts as a customer should read them: Decimal, thousands separators, the currency's symbol.

Tool results carry JSON numbers; going through `Decimal(str(x))` keeps 4287.55 as
4287.55 instead of the nearest binary float, so a reply never shows 4287.549999.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "JPY": "¥"}
# Minor units per ISO 4217 where they differ from two.
_DECIMALS = {"JPY": 0}


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number (or numeric string) as a Decimal; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def fmt(amount: Decimal, currency: str, *, sign: bool = False) -> str:
    """'£4,287.55', '-$1,499.00', '¥836,072'; unknown currencies as '12.50 CHF'. `sign` adds '+'."""
    ccy = currency.upper()
    places = _DECIMALS.get(ccy, 2)
    quantum = Decimal(1).scaleb(-places)
    rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    body = f"{abs(rounded):,.{places}f}"
    prefix = "-" if rounded < 0 else ("+" if sign and rounded > 0 else "")
    symbol = SYMBOLS.get(ccy)
    return f"{prefix}{symbol}{body}" if symbol else f"{prefix}{body} {ccy}"
