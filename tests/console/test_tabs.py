"""The write-up's eight tabs, in its order, at this cluster's addresses."""

from __future__ import annotations

from trustusbank.console.tabs import TABS, by_key, url_of
from trustusbank.runtime.portforward import SEED_PORTS

STATUS = {
    "forwards": [
        {"name": "trustusbank-bank-frontend/chatbot", "local_port": 18009, "state": "http://127.0.0.1:18009"},
        {"name": "external-attacker/mock-attacker", "local_port": 18011, "state": "port 18011 in use"},
    ],
    "console": {
        "pages": [
            {"name": "dashboard", "seed_port": 18001, "url": "http://127.0.0.1:41234/d/dora-evidence"},
            {"name": "sessions", "seed_port": 18007, "url": "http://127.0.0.1:41235/", "note": "port taken"},
            {"name": "alerts", "seed_port": 18002, "url": "http://127.0.0.1:18002/alerts"},
            {"name": "inbox", "seed_port": 18012, "url": "http://127.0.0.1:41236/", "note": "port taken"},
            {"name": "registry", "seed_port": 18006, "url": "http://127.0.0.1:18006/"},
        ]
    },
}


def test_the_eight_tabs_are_the_write_ups_in_its_order() -> None:
    assert [(t.port, t.path) for t in TABS] == [
        (18009, "/"),
        (18011, "/"),
        (18006, "/"),
        (18001, "/d/dora-evidence"),
        (18002, "/alerts"),
        (18012, "/"),
        (18007, "/"),
        (18006, "/api/servers/acme-fx/currency-converter"),
    ]
    assert len({t.key for t in TABS}) == 8
    assert all(len(t.acts) == 3 and all(t.acts) for t in TABS)


def test_only_the_customers_and_the_attackers_tabs_are_port_forwards() -> None:
    forwarded = {t.key for t in TABS if not t.source.startswith("console:")}
    assert forwarded == {"chatbot", "attacker"}  # every operator tab is the console's, behind its sign-in
    assert set(SEED_PORTS.values()) == {18009, 18011}


def test_a_tab_is_where_this_cluster_serves_it_or_nowhere() -> None:
    assert url_of(by_key("chatbot"), STATUS) == "http://127.0.0.1:18009/"  # type: ignore[arg-type]
    assert url_of(by_key("attacker"), STATUS) is None  # type: ignore[arg-type]  # another program's port
    assert url_of(by_key("dashboard"), STATUS) == "http://127.0.0.1:41234/d/dora-evidence"  # type: ignore[arg-type]
    assert url_of(by_key("sessions"), STATUS) == "http://127.0.0.1:41235/"  # type: ignore[arg-type]
    assert url_of(by_key("alerts"), STATUS) == "http://127.0.0.1:18002/alerts"  # type: ignore[arg-type]
    assert url_of(by_key("inbox"), STATUS) == "http://127.0.0.1:41236/"  # type: ignore[arg-type]
    assert url_of(by_key("registry"), STATUS) == "http://127.0.0.1:18006/"  # type: ignore[arg-type]
    converter = by_key("converter")
    assert converter is not None
    assert url_of(converter, STATUS) == "http://127.0.0.1:18006/api/servers/acme-fx/currency-converter"
    assert url_of(converter, None) is None
    assert by_key("grafana") is None
