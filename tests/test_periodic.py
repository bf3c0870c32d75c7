"""`every`: a duty that fails one round runs again, and a duty that hangs holds up only itself."""

from __future__ import annotations

import asyncio

import pytest

from trustusbank.periodic import every


async def test_a_round_that_raises_is_logged_and_the_next_round_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[int] = []
    third = asyncio.Event()

    def duty() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("policy set half-written")
        if len(rounds) == 3:
            third.set()

    task = asyncio.create_task(every(0, duty, "policy reload"))
    await third.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rounds[:3] == [0, 1, 2]
    assert "policy reload failed" in caplog.text
    assert "half-written" in caplog.text


async def test_a_hanging_duty_does_not_stop_the_one_beside_it() -> None:
    """As a node proxy's certificate rotation waiting on istiod beside its policy reload."""
    reloads = 0
    enough = asyncio.Event()

    async def hang() -> None:
        await asyncio.Event().wait()

    def reload() -> None:
        nonlocal reloads
        reloads += 1
        if reloads == 3:
            enough.set()

    both = asyncio.gather(every(0, hang, "certificate rotation"), every(0, reload, "policy reload"))
    await enough.wait()
    both.cancel()
    with pytest.raises(asyncio.CancelledError):
        await both
    assert reloads >= 3
