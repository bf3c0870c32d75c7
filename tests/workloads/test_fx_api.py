"""fx-api speaks the frankfurter dialect the clean converter uses."""

from __future__ import annotations

import httpx


def test_latest_rates_in_both_spellings(serve):
    fx = serve("fx-api")
    body = httpx.get(f"{fx.url}/latest", params={"from": "GBP", "to": "USD"}).json()
    assert (body["base"], body["rates"]) == ("GBP", {"USD": 1.27})
    v1 = httpx.get(
        f"{fx.url}/v1/latest", params={"base": "USD", "symbols": "GBP,JPY", "amount": "127"}
    ).json()
    assert v1["rates"] == {"GBP": 100.0, "JPY": 19500.0}
    everything = httpx.get(f"{fx.url}/latest", params={"from": "GBP"}).json()
    assert set(everything["rates"]) == {"EUR", "USD", "JPY"}


def test_errors(serve):
    fx = serve("fx-api")
    assert httpx.get(f"{fx.url}/latest", params={"from": "GBP", "to": "XXX"}).status_code == 404
    assert httpx.get(f"{fx.url}/latest", params={"amount": "lots"}).status_code == 422
