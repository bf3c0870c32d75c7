"""The console's pages by name, seed port and path: data only, apart from the servers behind them.

`console serve --help` shows the seed ports as its defaults; reading them here keeps the
console's server stack (uvicorn, Starlette, the relays, the sign-in) unloaded until it serves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """One of the console's apps, as the runtime binds it and the status file names it."""

    name: str
    seed_port: int  # the write-up's tab
    path: str  # where a browser opens it


DASHBOARD = Page("dashboard", 18001, "/d/dora-evidence")
SESSIONS = Page("sessions", 18007, "/")
ALERTS = Page("alerts", 18002, "/alerts")
INBOX = Page("inbox", 18012, "/")
REGISTRY = Page("registry", 18006, "/")
SIGNIN = Page("signin", 15556, "/")  # the provider: its URL is the issuer
