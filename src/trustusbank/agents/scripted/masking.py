"""PII masking for everything the scripted model says to a person.

The model masks every reply, whatever its system message says: a stand-in that
only masked when told to would make the demo's leak look like a prompt-writing
mistake, when the point is that a model which masks perfectly in its replies can
still hand the raw profile to a tool. Two passes:

1. every PII value seen in any tool result of the conversation (by field name:
   email, phone, address, date of birth, NI number, account numbers) is replaced
   by its masked form wherever it appears in the reply;
2. patterns catch what arrived in free text (a sub-agent's answer): e-mail
   addresses, UK National Insurance numbers, phone numbers.

Formats: e-mail `a***@example.com`, phone `+44 *** *** 100`, address city and
country, date of birth the year, NI `QQ ** ** ** C`, account numbers `****1234`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any


def mask_email(value: str) -> str:
    local, at, domain = value.strip().partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_phone(value: str) -> str:
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    tail = digits[-3:] if len(digits) >= 3 else ""
    if text.startswith("+"):
        first = re.match(r"\+(\d+)[\s-]", text)
        country = first.group(1) if first and len(first.group(1)) <= 3 else digits[:2]
        return f"+{country} *** *** {tail}"
    return f"*** *** {tail}"


def mask_address(value: str) -> str:
    """City and country: drop the street and every token with a digit in it (house numbers, postcodes)."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if len(parts) < 2:
        return "(address on file)"
    city = " ".join(token for token in parts[-2].split() if not any(ch.isdigit() for ch in token))
    return f"{city}, {parts[-1]}" if city else parts[-1]


def mask_date_of_birth(value: str) -> str:
    year = re.match(r"\s*(\d{4})\b", value)
    return year.group(1) if year else "****"


def mask_ni_number(value: str) -> str:
    compact = re.sub(r"\s", "", value).upper()
    if len(compact) < 3:
        return "** ** ** **"
    return f"{compact[:2]} ** ** ** {compact[-1]}"


def mask_account_number(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"****{digits[-4:]}" if len(digits) >= 4 else "****"


# field name (lower case) -> masker; a name matches when it equals the key or ends with "_" + key
MASKERS: dict[str, Callable[[str], str]] = {
    "email": mask_email,
    "email_address": mask_email,
    "phone": mask_phone,
    "mobile": mask_phone,
    "telephone": mask_phone,
    "address": mask_address,
    "date_of_birth": mask_date_of_birth,
    "dob": mask_date_of_birth,
    "birth_date": mask_date_of_birth,
    "ni_number": mask_ni_number,
    "national_insurance_number": mask_ni_number,
    "nino": mask_ni_number,
    "account_number": mask_account_number,
    "iban": mask_account_number,
    "card_number": mask_account_number,
}


def masker_for(field: str) -> Callable[[str], str] | None:
    name = field.lower()
    for key, masker in MASKERS.items():
        if name == key or name.endswith(f"_{key}"):
            return masker
    return None


def mask_field(field: str, value: Any) -> Any:
    """The value as it may be shown: masked when the field is PII, unchanged otherwise."""
    masker = masker_for(field)
    return masker(str(value)) if masker is not None and value is not None else value


def pii_values(data: Any) -> dict[str, str]:
    """Every raw PII string in a JSON value, mapped to its masked form."""
    found: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                masker = masker_for(str(key))
                if masker is not None and isinstance(value, str | int) and str(value).strip():
                    found[str(value)] = masker(str(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_NI = re.compile(r"\b[A-Za-z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-Da-d]\b")
# international (+44 7700 900100), UK national with separators (07700 900100), or 11 bare digits
_PHONE = re.compile(r"\+\d{1,3}[\s-]?\d[\d\s-]{6,}\d|\b0\d{2,4}[\s-]\d{3,4}(?:[\s-]?\d{3,4})?\b|\b0\d{10}\b")


def scrub(text: str, known: Iterable[Any] = ()) -> str:
    """`text` with the PII values found in `known` (tool results) and PII-shaped strings masked."""
    values: dict[str, str] = {}
    for data in known:
        values.update(pii_values(data))
    for raw in sorted(values, key=len, reverse=True):
        if len(raw) >= 3:
            text = text.replace(raw, values[raw])
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    text = _NI.sub(lambda m: mask_ni_number(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
