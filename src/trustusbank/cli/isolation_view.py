"""The isolation mode in one line, as `up`, `status` and `demo` all show it."""

from __future__ import annotations

from typing import Any

from rich.console import Console


def render_isolation(console: Console, isolation: dict[str, Any]) -> None:
    """Green when pods are isolated; red otherwise, since the cooperative mode is no security boundary."""
    summary = isolation.get("summary", "unknown (a supervisor from an older version)")
    colour = "green" if isolation.get("mode") == "namespaces" else "red"
    console.print(f"[bold]isolation:[/] [{colour}]{summary}[/]", soft_wrap=True, highlight=False)
