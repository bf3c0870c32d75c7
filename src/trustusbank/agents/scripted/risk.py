"""Fraud risk of a card transaction, 0-100, by rules a fraud analyst can read back.

TrustUsBank is a UK bank: a payment is judged against the account's home
country (GB) and currency (GBP, or whatever get_balance said). Points add up and
stop at 100; money coming in scores 0. Every point comes with its reason, so the
score can be explained to the customer, the analyst and the auditor alike.

| rule                                              | points |
|---------------------------------------------------|--------|
| merchant country is not the home country          | 25     |
| merchant country is a high-risk jurisdiction      | 20     |
| charged in a currency other than the account's    | 15     |
| amount >= 1,000 (>= 250: 10)                      | 20     |
| merchant looks like luxury goods / unrecognisable | 15     |

The seed's -1,499.00 USD payment to GenericLuxuryGoods in RU scores 95.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trustusbank.agents.scripted.money import fmt, to_decimal

HOME_COUNTRY = "GB"
HOME_CURRENCY = "GBP"
FLAG_ABOVE = 70  # flag a transaction, and escalate a case, when its score is above this

# Jurisdictions under UK/EU sanctions or on the FATF call-for-action / monitoring lists.
HIGH_RISK_COUNTRIES = frozenset({"RU", "BY", "IR", "KP", "SY", "CU", "MM", "VE", "AF", "YE"})
_RISKY_MERCHANT = re.compile(
    r"luxury|generic|crypto|gift ?card|casino|\bbet(?:ting)?\b|wire|unknown|\btest\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Scored:
    txn: dict[str, Any]
    score: int
    reasons: tuple[str, ...]

    @property
    def txn_id(self) -> str:
        return str(self.txn.get("txn_id", "?"))

    def describe(self) -> str:
        """'txn-003: -$1,499.00 at GenericLuxuryGoods (RU)'."""
        amount = to_decimal(self.txn.get("amount"))
        currency = str(self.txn.get("currency") or "")
        money = fmt(amount, currency) if amount is not None and currency else "an unknown amount"
        where = f" ({self.txn['country']})" if self.txn.get("country") else ""
        return f"{self.txn_id}: {money} at {self.txn.get('merchant', 'an unknown merchant')}{where}"

    def rationale(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "nothing unusual"


def score(txn: dict[str, Any], home_currency: str = HOME_CURRENCY) -> Scored:
    amount = to_decimal(txn.get("amount")) or Decimal(0)
    if amount >= 0:
        return Scored(txn, 0, ("money in",))
    points = 0
    reasons: list[str] = []
    country = str(txn.get("country") or "").upper()
    if country and country != HOME_COUNTRY:
        points += 25
        reasons.append(f"merchant abroad ({country})")
    if country in HIGH_RISK_COUNTRIES:
        points += 20
        reasons.append(f"{country} is a high-risk jurisdiction")
    currency = str(txn.get("currency") or "").upper()
    if currency and currency != home_currency.upper():
        points += 15
        reasons.append(f"charged in {currency}, account in {home_currency.upper()}")
    if -amount >= 1000:
        points += 20
        reasons.append("large amount")
    elif -amount >= 250:
        points += 10
        reasons.append("above usual spend")
    merchant = str(txn.get("merchant") or "")
    if not merchant or _RISKY_MERCHANT.search(merchant):
        points += 15
        reasons.append("luxury-goods or unrecognisable merchant")
    return Scored(txn, min(points, 100), tuple(reasons))


def level(points: int) -> str:
    return "high" if points > FLAG_ABOVE else "medium" if points > 40 else "low"
