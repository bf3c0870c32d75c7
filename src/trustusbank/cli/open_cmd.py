"""`trustusbank open [TAB]`: the eight tabs in the write-up's order, what to watch in each act, and
(with a tab's name) that tab opened in the browser."""

from __future__ import annotations

import webbrowser
from typing import Annotated, Any

import typer
from rich.console import Console

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.console.tabs import TABS, Tab, by_key, url_of
from trustusbank.paths import state_dir
from trustusbank.runtime import control

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def running_status() -> dict[str, Any] | None:
    files = ClusterFiles(state_dir())
    return control.read_status(files) if control.running_pid(files) is not None else None


def render_tabs(status: dict[str, Any] | None, console: Console = out, acts: bool = True) -> None:
    """One line per tab with its address, then (with `acts`) what to watch in each act."""
    for number, tab in enumerate(TABS, 1):
        where = url_of(tab, status)
        shown = where or f"[dim]{tab.seed_url} (not served by this cluster)[/]"
        console.print(f"{number}. {tab.title:<40} {shown}")
    for act in range(3 if acts else 0):
        console.print(f"\n[bold]Act {act + 1}[/]")
        for tab in TABS:
            console.print(f"  {tab.key:<10} {tab.acts[act]}")


def open_command(
    tab: Annotated[
        str | None,
        typer.Argument(help=f"Open one tab: {', '.join(t.key for t in TABS)}.", show_default=False),
    ] = None,
) -> None:
    """The write-up's eight browser tabs: their addresses on this cluster and what to watch in each act."""
    status = running_status()
    if status is None:
        err.print("[yellow]no cluster is running from this state dir:[/] the seed's addresses are shown")
    if tab is None:
        render_tabs(status)
        return
    chosen: Tab | None = by_key(tab)
    if chosen is None:
        raise typer.BadParameter(f"no tab {tab!r}; choose one of: {', '.join(t.key for t in TABS)}")
    where = url_of(chosen, status) or chosen.seed_url
    out.print(where)
    if not webbrowser.open(where):
        err.print("no browser could be started here: open the address above yourself")
