"""The registry page as served: every row in the HTML itself (no script run), drift marked, input escaped."""

from __future__ import annotations

import base64
import hashlib

import httpx

from tests.workloads.agentregistry.html_tree import Element, parse
from tests.workloads.agentregistry.support import CONVERTER, push_converter, store_env

NAMES = ["account-mcp", "transaction-mcp", "ticket-mcp", CONVERTER]


def page(url: str) -> tuple[httpx.Response, Element]:
    response = httpx.get(url)
    response.raise_for_status()
    return response, parse(response.text)


def server_rows(doc: Element) -> dict[str, Element]:
    rows = [tr for tr in doc.by_id("servers").iter("tr") if "data-name" in tr.attrs]
    return {tr.attrs["data-name"]: tr for tr in rows}


def titles(element: Element) -> set[str]:
    return {e.attrs["title"] for e in element.iter("code") if "title" in e.attrs}


def codes(element: Element) -> set[str]:
    return {e.text() for e in element.iter("code")}


def test_every_row_is_in_the_html_with_both_digests_and_the_signature(serve, images) -> None:
    store, keys = images
    rug = push_converter(store, "real-rugpull", keys.red_team())
    registry = serve("agentregistry", env=store_env(store))
    api = {e["name"]: e for e in httpx.get(f"{registry.url}/api/servers").json()["servers"]}
    _, doc = page(registry.url)
    rows = server_rows(doc)
    assert list(rows) == NAMES
    for name, row in rows.items():
        entry = api[name]
        assert name in row.text()
        for digest in (entry["pinned"]["digest"], entry["running"]["digest"]):
            assert digest in titles(row)  # the full value, on hover
            assert digest in codes(row)  # and as text to copy
            assert f"{digest[:15]}…" in row.text()  # shown short
        assert entry["signature"]["status"] in row.text()
        assert entry["pinned"]["tool_list_hash"] in codes(row)
    converter = rows[CONVERTER]
    assert api[CONVERTER]["running"]["digest"] == rug.digest()
    assert "drift" in converter.classes
    assert converter.attrs["data-digest"] == "drift"
    assert converter.attrs["data-tools"] == "drift"
    assert converter.attrs["data-signature"] == "untrusted"
    assert "same tag, different digest" in converter.text()
    for name in NAMES[:3]:
        assert "ok" in rows[name].classes
        assert rows[name].attrs["data-signature"] == "org"
    summary = next(p for p in doc.iter("p") if "summary" in p.classes)
    assert "drift" in summary.classes
    assert CONVERTER in summary.text()


def test_a_rug_pull_shows_on_the_next_request(serve, images) -> None:
    store, _ = images
    registry = serve("agentregistry", env=store_env(store))
    before = server_rows(page(registry.url)[1])[CONVERTER]
    assert "ok" in before.classes
    assert before.attrs["data-digest"] == "match"

    mock = push_converter(store, "mock-rugpull", signer=None)
    after = server_rows(page(registry.url)[1])[CONVERTER]
    assert "drift" in after.classes
    assert after.attrs["data-digest"] == "drift"
    assert after.attrs["data-tools"] == "match"  # the mock rug pull keeps the tool list
    assert after.attrs["data-signature"] == "unsigned"
    assert mock.digest() in titles(after)
    builds = [tr for tr in page(registry.url)[1].by_id("builds").iter("tr") if tr.attrs.get("data-name")]
    verdicts = {tr.attrs["data-build"]: tr.classes for tr in builds if tr.attrs["data-name"] == CONVERTER}
    assert verdicts == {"clean": {"ok"}, "mock-rugpull": {"drift"}, "real-rugpull": {"drift"}}


def test_without_an_image_store_the_rows_say_not_checked(serve) -> None:
    rows = server_rows(page(serve("agentregistry").url)[1])
    assert list(rows) == NAMES
    for row in rows.values():
        assert "unchecked" in row.classes
        assert row.attrs["data-signature"] == "not-checked"
        assert "running digest not checked" in row.text()


HOSTILE = '<script>alert(1)</script>{{builds}}"><img src=x onerror=alert(2)>'


def test_a_hostile_server_name_is_text_not_markup(serve, tmp_path) -> None:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(
        "servers:\n"
        f"  - name: '{HOSTILE}'\n"
        f"    title: '{HOSTILE}'\n"
        "    publisher: P\n    version: 1.0.0\n    classification: third-party\n"
        "    deployment: trustusbank-bank-mcp/account-mcp\n    description: D\n"
    )
    response, doc = page(serve("agentregistry", env={"AGENTREGISTRY_CATALOGUE": str(catalogue)}).url)
    assert [e.attrs for e in doc.iter("img")] == []
    assert len(list(doc.iter("script"))) == 1  # the page's own
    rows = server_rows(doc)
    assert list(rows) == [HOSTILE]
    name = next(e for e in rows[HOSTILE].iter("strong") if "name" in e.classes)
    assert name.text() == HOSTILE
    assert len(list(doc.by_id("builds").iter("tbody"))) == 1  # the slot text stayed text
    assert HOSTILE not in response.text  # only its escaped form was sent


def inline_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_policy_lets_only_the_pages_own_style_and_script_run(serve) -> None:
    response, doc = page(serve("agentregistry").url)
    policy = dict(
        [*part.split(" ", 1), ""][:2] for part in response.headers["content-security-policy"].split("; ")
    )
    assert policy["default-src"] == "'none'"
    (script,) = doc.iter("script")
    (style,) = doc.iter("style")
    assert script.attrs == {}  # inline, no src: nothing is loaded from elsewhere
    assert policy["script-src"] == inline_hash(script.text())
    assert policy["style-src"] == inline_hash(style.text())
    assert policy["connect-src"] == "'self'"
    external = [e.attrs for e in doc.iter() if {"src", "href"} & set(e.attrs)]
    assert external == []
