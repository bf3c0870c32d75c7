"""Point an agent card fetched through the proxy back at the proxy.

An agent advertises where it listens (`supportedInterfaces[].url`, or the legacy
top-level `url`) as an in-cluster address. A client outside the cluster that
fetched the card through the chatbot must keep talking through the chatbot, both
because it cannot reach that address and because the call must carry the
chatbot's mesh identity, which is what the agent's AccessPolicy judges.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

# Bindings that travel over plain HTTP, so the proxy can carry them; gRPC cannot be.
HTTP_BINDINGS = {"JSONRPC", "HTTP+JSON"}
CARD_PATHS = {".well-known/agent-card.json", ".well-known/agent.json"}


def proxied_url(url: object, upstream_base: str, public_base: str) -> str:
    """Where the proxy serves `url`: its path under the agent's base, below `public_base`.

    The proxy maps `<public_base><rest>` to `<upstream_base><rest>`; a URL outside the
    agent's base path (or no URL at all) becomes the proxy's base itself.
    """
    path = urlsplit(url).path if isinstance(url, str) else ""
    prefix = urlsplit(upstream_base).path.rstrip("/") + "/"
    rest = path[len(prefix) :] if (path + "/").startswith(prefix) else ""
    return public_base.rstrip("/") + "/" + rest.lstrip("/")


def rewrite_card(card: dict[str, Any], upstream_base: str, public_base: str) -> dict[str, Any]:
    """A copy of `card` whose every HTTP interface is the proxy; gRPC ones are dropped.

    A signed card no longer verifies after this (the signature covers the URLs): the
    card a client sees through the proxy is, honestly, the proxy's statement.
    """
    out = dict(card)
    for key in ("supportedInterfaces", "supported_interfaces"):
        interfaces = card.get(key)
        if isinstance(interfaces, list):
            out[key] = [
                {**iface, "url": proxied_url(iface.get("url"), upstream_base, public_base)}
                for iface in interfaces
                if isinstance(iface, dict)
                and (iface.get("protocolBinding") or iface.get("protocol_binding") or "JSONRPC")
                in HTTP_BINDINGS
            ]
    if "url" in card:  # v0.3 cards: the main interface, plus additional ones
        out["url"] = proxied_url(card["url"], upstream_base, public_base)
    additional = card.get("additionalInterfaces")
    if isinstance(additional, list):
        out["additionalInterfaces"] = [
            {**iface, "url": proxied_url(iface.get("url"), upstream_base, public_base)}
            for iface in additional
            if isinstance(iface, dict) and iface.get("transport", "JSONRPC") in HTTP_BINDINGS
        ]
    return out
