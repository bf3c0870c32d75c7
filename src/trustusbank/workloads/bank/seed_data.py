"""The synthetic customers and transactions every fresh bank database starts with.

Customer 12345 is the write-up's Alice Smith; the other fields (address, date of
birth, National Insurance number, KYC status) and the other customers come from
the demo's code. All of it is fictional.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

CUSTOMERS: Final[list[dict[str, object]]] = [
    {
        "customer_id": "12345",
        "name": "Alice Smith",
        "email": "alice@example.com",
        "phone": "+44 7700 900100",
        "address": "42 King Street, Manchester M2 7HE, United Kingdom",
        "date_of_birth": "1987-03-14",
        "ni_number": "QQ 12 34 56 C",
        "kyc_status": "verified",
        "balance": "4287.55",
        "currency": "GBP",
    },
    {
        "customer_id": "12346",
        "name": "Priya Singh",
        "email": "priya.singh@example.org",
        "phone": "+44 7700 900456",
        "address": "11 Acacia Avenue, Edinburgh EH3 9HJ, United Kingdom",
        "date_of_birth": "1992-11-02",
        "ni_number": "QQ 78 90 12 D",
        "kyc_status": "verified",
        "balance": "102.33",
        "currency": "GBP",
    },
    {
        "customer_id": "12347",
        "name": "Marco Rossi",
        "email": "marco.rossi@example.net",
        "phone": "+44 7700 900789",
        "address": "Flat 6, 88 Bishopsgate, London EC2N 4BQ, United Kingdom",
        "date_of_birth": "1979-07-22",
        "ni_number": "QQ 34 56 78 A",
        "kyc_status": "under_review",
        "balance": "18920.00",
        "currency": "GBP",
    },
]

# (txn_id, customer_id, age, amount, currency, merchant, country). Ages are kept
# relative to "now" so the demo's "recent" transactions stay recent.
TRANSACTIONS: Final[list[tuple[str, str, timedelta, str, str, str, str]]] = [
    ("txn-001", "12345", timedelta(hours=2), "-22.10", "GBP", "Pret a Manger", "GB"),
    ("txn-002", "12345", timedelta(hours=5), "-89.99", "GBP", "Sainsbury's", "GB"),
    ("txn-003", "12345", timedelta(hours=14), "-1499.00", "USD", "GenericLuxuryGoods", "RU"),
    ("txn-004", "12345", timedelta(days=1, hours=3), "2300.00", "GBP", "Salary", "GB"),
    ("txn-005", "12346", timedelta(hours=3), "-8.20", "GBP", "Caffè Nero", "GB"),
    ("txn-006", "12347", timedelta(days=2), "-450.00", "GBP", "British Airways", "GB"),
]
