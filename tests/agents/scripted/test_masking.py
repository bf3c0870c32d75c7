from __future__ import annotations

import pytest

from trustusbank.agents.scripted.masking import (
    mask_account_number,
    mask_address,
    mask_date_of_birth,
    mask_email,
    mask_field,
    mask_ni_number,
    mask_phone,
    scrub,
)
from trustusbank.workloads.bank.seed_data import CUSTOMERS


def test_formats_of_the_write_up() -> None:
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_phone("+44 7700 900100") == "+44 *** *** 100"
    assert mask_phone("07700 900100") == "*** *** 100"
    assert mask_address("42 King Street, Manchester M2 7HE, United Kingdom") == "Manchester, United Kingdom"
    assert mask_address("Flat 6, 88 Bishopsgate, London EC2N 4BQ, United Kingdom") == "London, United Kingdom"
    assert mask_date_of_birth("1987-03-14") == "1987"
    assert mask_ni_number("QQ 12 34 56 C") == "QQ ** ** ** C"
    assert mask_ni_number("qq123456c") == "QQ ** ** ** C"
    assert mask_account_number("GB29 NWBK 6016 1331 9268 19") == "****6819"
    assert mask_field("account_number", "12345678") == "****5678"
    assert mask_field("name", "Alice Smith") == "Alice Smith"


@pytest.mark.parametrize("customer", CUSTOMERS, ids=lambda c: str(c["customer_id"]))
def test_every_seed_customer_is_masked_by_value(customer: dict[str, object]) -> None:
    raw = {k: str(v) for k, v in customer.items()}
    text = (
        f"Email {raw['email']}, phone {raw['phone']}, lives at {raw['address']}, "
        f"born {raw['date_of_birth']}, NI {raw['ni_number']}."
    )
    masked = scrub(text, [raw])
    for field in ("email", "phone", "address", "date_of_birth", "ni_number"):
        assert raw[field] not in masked, field
        assert mask_field(field, raw[field]) in masked, field


def test_free_text_patterns_are_masked_without_known_values() -> None:
    text = "Reach bob.jones@example.org or +44 20 7946 0958 or 07700 900123; NI AB123456D."
    masked = scrub(text)
    assert "bob.jones" not in masked
    assert "b***@example.org" in masked
    assert "7946" not in masked
    assert "+44 *** *** 958" in masked
    assert "900123" not in masked
    assert "*** *** 123" in masked
    assert "AB ** ** ** D" in masked


def test_ordinary_reply_text_is_left_alone() -> None:
    text = (
        "Your balance is £4,287.55 (about $5,445.19 USD).\n"
        "- 2026-11-26: GenericLuxuryGoods (RU), -$1,499.00\n- 2026-11-25: Salary (GB), +£2,300.00\n"
        "Opened incident ticket TICK-0A1B2C3D for customer 12345; txn-003 scored 95/100."
    )
    assert scrub(text) == text
    assert scrub(scrub("alice@example.com +44 7700 900100")) == scrub("alice@example.com +44 7700 900100")
