"""The write-up's eight tabs, in its order, at this cluster's addresses."""

from __future__ import annotations

from trustusbank.console.tabs import TABS, by_key, url_of

STATUS = {
    "forwards": [
        {"name": "trustusbank-bank-frontend/chatbot", "local_port": 18009, "state": "http://127.0.0.1:18009"},
        {"name": "external-attacker/mock-attacker", "local_port": 18011, "state": "port 18011 in use"},
        {
            "name": "trustusbank-platform/agentregistry",
            "local_port": 18006,
            "state": "http://127.0.0.1:18006",
        },
    ],
    "console": {
        "pages": [
            {"name": "dashboard", "seed_port": 18001, "url": "http://127.0.0.1:41234/d/dora-evidence"},
            {"name": "sessions", "seed_port": 18007, "url": "http://127.0.0.1:41235/", "note": "port taken"},
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


def test_a_tab_is_where_this_cluster_serves_it_or_nowhere() -> None:
    assert url_of(by_key("chatbot"), STATUS) == "http://127.0.0.1:18009/"  # type: ignore[arg-type]
    assert url_of(by_key("attacker"), STATUS) is None  # type: ignore[arg-type]  # another program's port
    assert url_of(by_key("dashboard"), STATUS) == "http://127.0.0.1:41234/d/dora-evidence"  # type: ignore[arg-type]
    assert url_of(by_key("sessions"), STATUS) == "http://127.0.0.1:41235/"  # type: ignore[arg-type]
    converter = by_key("converter")
    assert converter is not None
    assert url_of(converter, STATUS) == "http://127.0.0.1:18006/api/servers/acme-fx/currency-converter"
    assert url_of(converter, None) is None
    assert by_key("grafana") is None
