"""Shared-timer deadlines behave as asyncio.timeout does: expiry is TimeoutError, a cancel
from outside stays a cancel, and deadlines in one grain share one timer."""

from __future__ import annotations

import asyncio
import time

import pytest

from monitord.agent.deadlines import GRAIN, Deadlines


async def test_a_block_past_its_deadline_raises_timeout_error() -> None:
    deadlines = Deadlines()
    started = time.monotonic()
    deadline = deadlines.after(0.2)
    with pytest.raises(TimeoutError):
        async with deadline:
            await asyncio.sleep(10)
    assert deadline.expired()
    assert 0.2 <= time.monotonic() - started < 0.2 + GRAIN + 0.2


async def test_a_block_that_ends_in_time_is_left_alone() -> None:
    deadlines = Deadlines()
    deadline = deadlines.after(5)
    async with deadline:
        await asyncio.sleep(0.01)
    assert not deadline.expired()
    await asyncio.sleep(0)
    deadlines.close()


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    deadlines = Deadlines()

    async def guarded() -> None:
        async with deadlines.after(5):
            await asyncio.sleep(10)

    task = asyncio.create_task(guarded())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadlines.close()


async def test_deadlines_in_one_grain_share_a_timer_and_each_expires() -> None:
    deadlines = Deadlines()
    expired = 0

    async def one() -> None:
        nonlocal expired
        try:
            async with deadlines.after(0.1):
                await asyncio.sleep(10)
        except TimeoutError:
            expired += 1

    tasks = [asyncio.create_task(one()) for _ in range(50)]
    await asyncio.sleep(0)
    assert len(deadlines._timers) <= 2   # 50 deadlines, at most two grains
    await asyncio.gather(*tasks)
    assert expired == 50
