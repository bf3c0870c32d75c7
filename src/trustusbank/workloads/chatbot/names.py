"""Agent references as the chatbot and `trustusbank ask` take them: `<namespace>/<name>`.

Both parts become a host name upstream (`<name>.<namespace>.svc.cluster.local`), so
both must be DNS-1123 labels before they go near a URL. Kept free of heavy imports:
the CLI reads it at start.
"""

from __future__ import annotations

import re

DEFAULT_AGENT = "trustusbank-bank-agents/support-bot"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def is_dns_label(name: str) -> bool:
    return _DNS_LABEL.fullmatch(name) is not None


def parse_agent(ref: str) -> tuple[str, str]:
    """`<namespace>/<name>` -> (namespace, name), both DNS-1123 labels."""
    namespace, _, name = ref.strip().partition("/")
    if not (is_dns_label(namespace) and is_dns_label(name)):
        raise ValueError(f"agent must be <namespace>/<name> (DNS-1123 labels), got {ref!r}")
    return namespace, name
