"""What a customer is asking for, from their words.

Keyword rules, in the open: a stand-in for a language model's understanding that
anyone can read and predict. A message may carry several intents ("check my
balance, list my transactions and convert it to USD"); the planner serves them
in a fixed order, so the same words always give the same tool calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Intent(Enum):
    BALANCE = "balance"
    TRANSACTIONS = "transactions"
    CONVERT = "convert"
    PROFILE = "profile"
    FRAUD = "fraud"
    GREETING = "greeting"
    THANKS = "thanks"


DEFAULT_DAYS = 30

_RULES: dict[Intent, re.Pattern[str]] = {
    Intent.BALANCE: re.compile(r"\bbalance\b|\bhow much (?:money )?(?:do i have|is (?:left )?in)\b"),
    Intent.TRANSACTIONS: re.compile(
        r"\btransactions?\b|\bstatement\b|\bpayments?\b|\bspending\b|\bpurchases?\b|"
        r"\brecent (?:activity|charges)\b|\bwhat did i (?:spend|pay)\b"
    ),
    Intent.CONVERT: re.compile(
        r"\bconver(?:t|sion|ted)\b|\bexchange\b|\bworth in\b|"
        r"\bin (?:us )?(?:dollars?|euros?|yen|usd|eur|jpy|gbp|pounds?|sterling)\b"
    ),
    Intent.PROFILE: re.compile(
        r"\bprofile\b|\bpersonal (?:details|information|info|data)\b|\bmy details\b|"
        r"\bcontact details\b|\b(?:what|which) (?:email|phone|address)\b|\bdetails (?:do|does) you have\b|"
        r"\bwhat do you (?:know|have) (?:about|on) me\b"
    ),
    Intent.FRAUD: re.compile(
        r"\b(?:don'?t|do not|didn'?t|did not|can'?t|cannot) recogni[sz]e\b|\bunrecogni[sz]ed\b|"
        r"\bfraud\w*|\bsuspicious\b|\bscam\w*\b|\bstolen\b|\bunauthori[sz]ed\b|\bwasn'?t me\b|"
        r"\bnot (?:made|authori[sz]ed) by me\b|\bhacked\b"
    ),
}
_GREETING = re.compile(r"^\s*(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening))\b", re.IGNORECASE)
_THANKS = re.compile(r"\b(?:thanks|thank you|cheers|ta)\b", re.IGNORECASE)

# words and symbols a customer uses for a currency -> ISO 4217
_CURRENCY_WORDS: dict[str, str] = {
    "usd": "USD",
    "us dollars": "USD",
    "us dollar": "USD",
    "dollars": "USD",
    "dollar": "USD",
    "$": "USD",
    "eur": "EUR",
    "euros": "EUR",
    "euro": "EUR",
    "€": "EUR",
    "jpy": "JPY",
    "yen": "JPY",
    "¥": "JPY",
    "gbp": "GBP",
    "pounds": "GBP",
    "pound": "GBP",
    "sterling": "GBP",
    "£": "GBP",
}
_WORD_ALT = "|".join(re.escape(w) for w in sorted(_CURRENCY_WORDS, key=len, reverse=True))
_TARGET = re.compile(rf"\b(?:to|into|in)\s+(?:the\s+)?({_WORD_ALT})(?![a-z])", re.IGNORECASE)
_ISO_TARGET = re.compile(r"\b(?:to|into|in)\s+([A-Z]{3})\b")  # case-sensitive: "to CHF", not "in the"
_ANY = re.compile(rf"(?<![a-z])({_WORD_ALT})(?![a-z])", re.IGNORECASE)

_DAYS = re.compile(r"\b(?:last|past|previous)?\s*(\d{1,3})\s*(day|week|month)s?\b", re.IGNORECASE)
_PERIOD = re.compile(r"\b(?:last|past|this|previous)\s+(day|week|fortnight|month|quarter)\b", re.IGNORECASE)
_PERIOD_DAYS = {"day": 1, "week": 7, "fortnight": 14, "month": 30, "quarter": 90}
_TXN_ID = re.compile(r"\btxn-\d{3,}\b")


@dataclass(frozen=True)
class Ask:
    intents: frozenset[Intent]
    to_ccy: str | None  # the currency to convert to, when one was named
    days: int  # how far back "recent" reaches

    def wants(self, intent: Intent) -> bool:
        return intent in self.intents


def read(text: str) -> Ask:
    lower = (text or "").lower()
    intents = {intent for intent, rule in _RULES.items() if rule.search(lower)}
    if Intent.BALANCE in intents and _ISO_TARGET.search(text or ""):  # "my balance in CHF"
        intents.add(Intent.CONVERT)
    if not intents and _GREETING.match(text or ""):
        intents.add(Intent.GREETING)
    elif not intents and _THANKS.search(text or ""):
        intents.add(Intent.THANKS)
    return Ask(frozenset(intents), target_currency(text or ""), days_in(text or ""))


def target_currency(text: str) -> str | None:
    """The currency after 'to'/'into'/'in' ('to USD', 'in dollars'), else the only one named."""
    match = _TARGET.search(text)
    if match:
        return _CURRENCY_WORDS[match.group(1).lower()]
    iso = _ISO_TARGET.search(text)
    if iso:
        return iso.group(1)
    named = {_CURRENCY_WORDS[m.group(1).lower()] for m in _ANY.finditer(text)}
    return named.pop() if len(named) == 1 else None


def days_in(text: str) -> int:
    """'last 30 days' -> 30, '2 weeks' -> 14, 'last month' -> 30; DEFAULT_DAYS otherwise."""
    match = _DAYS.search(text)
    if match:
        return int(match.group(1)) * _PERIOD_DAYS[match.group(2).lower()]
    period = _PERIOD.search(text)
    if period:
        return _PERIOD_DAYS[period.group(1).lower()]
    return DEFAULT_DAYS


def txn_ids(text: str) -> list[str]:
    return list(dict.fromkeys(_TXN_ID.findall(text or "")))
