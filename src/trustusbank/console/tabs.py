"""The write-up's eight browser tabs, in its order, with what the presenter points at in each act.

Said once: `trustusbank open` lists them (and opens one), `up` prints them when the cluster is
ready. A tab's address is this cluster's: the seed port when this cluster holds it, else where
it really listens (another cluster may hold the seed port; tests turn forwards off). The
customer's chatbot and the attacker's page are port-forwards; every operator tab is the
console's, behind its sign-in (`status["console"]["pages"]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tab:
    key: str  # what `trustusbank open <key>` takes
    title: str
    port: int  # the write-up's local port
    path: str
    source: str  # the Deployment `<namespace>/<name>` forwarded there, or `console:<page>`
    acts: tuple[str, str, str]  # what to watch in Act 1, 2, 3

    @property
    def seed_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


TABS = (
    Tab("chatbot", "Chatbot (the customer)", 18009, "/", "trustusbank-bank-frontend/chatbot",
        ("the seed prompt answered: balance, transactions, USD",
         "the same reply: the customer sees nothing wrong",
         "the same reply again: the defence costs the customer nothing")),
    Tab("attacker", "Attacker's view", 18011, "/", "external-attacker/mock-attacker",
        ("nothing received", "BREACH: the customer's profile arrives", "nothing new arrives")),
    Tab("registry", "Agent registry", 18006, "/", "console:registry",
        ("pinned digest = running digest, signed by the org",
         "same tag, different digest, untrusted signature",
         "still the rug-pulled digest: the runtime, not the registry, holds the line")),
    Tab("dashboard", "DORA evidence (Grafana)", 18001, "/d/dora-evidence", "console:dashboard",
        ("no denies", "attempts towards the attacker, allowed",
         "the deny: converter's SPIFFE identity, image and digest, linked to its trace")),
    Tab("alerts", "Alerts (Prometheus)", 18002, "/alerts", "console:alerts",
        ("nothing firing", "BankToAttackerAttempt firing",
         "IstioAuthZDeny and BankToAttackerAttempt firing")),
    Tab("inbox", "SOC inbox", 18012, "/", "console:inbox",
        ("empty", "the attempt mailed", "the deny mailed, with the quarantine command")),
    Tab("sessions", "Agent sessions and traces (kagent UI)", 18007, "/", "console:sessions",
        ("support-bot's three tool calls",
         "get_profile, then convert_currency with the profile: the model was fooled",
         "the same calls; the trace shows where the connection was refused")),
    Tab("converter", "Agent registry: the converter's entry", 18006,
        "/api/servers/acme-fx/currency-converter", "console:registry",
        ("the converter's pin and its running digest agree",
         "the entry after the swap: the pin stands, the running digest moved",
         "unchanged from Act 2: no registry edit undoes a rug pull")),
)  # fmt: skip


def _console_base(status: Mapping[str, Any], page: str) -> str | None:
    """The console page's origin (`http://host:port`), from `status["console"]["pages"]`."""
    console = status.get("console")
    pages = console.get("pages") if isinstance(console, Mapping) else None
    for entry in pages if isinstance(pages, list) else []:
        url = str(entry.get("url", "")) if isinstance(entry, Mapping) else ""
        if entry.get("name") == page and url.startswith("http"):
            scheme, _, rest = url.partition("://")
            return f"{scheme}://{rest.split('/', 1)[0]}"
    return None


def url_of(tab: Tab, status: Mapping[str, Any] | None) -> str | None:
    """Where this cluster serves `tab` (None: it does not, e.g. the port is another program's)."""
    if status is None:
        return None
    if tab.source.startswith("console:"):
        base = _console_base(status, tab.source.removeprefix("console:"))
        return base + tab.path if base else None
    for forward in status.get("forwards", []):
        state = str(forward.get("state", ""))
        if forward.get("name") == tab.source and state.startswith("http"):
            return state.rstrip("/") + tab.path
    return None


def by_key(key: str) -> Tab | None:
    return next((t for t in TABS if t.key == key), None)
