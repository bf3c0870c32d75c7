"""Run a duty every few seconds in a task of its own, and keep running it when one round fails.

A node proxy reloads policy and rotates certificates; a waypoint does the same. They are
independent duties, as ztunnel's xDS and CA clients are: a hung or failing certificate
authority must never stop a DENY from being applied, and a round that raises must not end
the loop (the process would serve on, frozen at the policies it had).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

log = logging.getLogger(__name__)

Duty = Callable[[], Awaitable[object] | None]


async def every(seconds: float, duty: Duty, what: str) -> NoReturn:
    """Sleep `seconds`, run `duty`, forever; a failing round is logged and the next one runs."""
    while True:
        await asyncio.sleep(seconds)
        try:
            result = duty()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("%s failed; the next round runs in %ss", what, seconds)
