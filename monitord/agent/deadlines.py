"""Probe deadlines that share their timers: ``asyncio.timeout``'s behaviour, one timer a
slice.

Every run of every check has a deadline. With one timer each (``asyncio.timeout``), a
thousand checks a minute make a thousand timers, each a handle started and stopped in the
event loop. Here the deadlines that fall in the same ``GRAIN`` (50 ms) share one timer: a
deadline is rounded up to the end of its grain (a probe may get up to 50 ms more than
its timeout, never less), and one timer a grain cancels the runs still going. Expiry works
as ``asyncio.timeout``'s does (Python 3.11, asyncio/timeouts.py): the task is cancelled,
and leaving the block turns that cancellation, and only that one, into ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

GRAIN = 0.05


class Deadlines:
    """The shared timers of one event loop's deadlines, by grain."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._grains: dict[int, dict[Deadline, None]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def after(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now, to enter with ``async with``."""
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("deadlines of another event loop")
        return Deadline(self, self._loop.time() + seconds)

    def _add(self, deadline: Deadline, when: float) -> int:
        grain = math.ceil(when / GRAIN)
        waiting = self._grains.get(grain)
        if waiting is None:
            waiting = self._grains[grain] = {}
            self._timers[grain] = self._loop.call_at(grain * GRAIN, self._expire, grain)
        waiting[deadline] = None
        return grain

    def _remove(self, deadline: Deadline, grain: int) -> None:
        waiting = self._grains.get(grain)
        if waiting is not None:
            waiting.pop(deadline, None)

    def _expire(self, grain: int) -> None:
        self._timers.pop(grain, None)
        for deadline in self._grains.pop(grain, {}):
            deadline.expire()

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._grains.clear()


class Deadline:
    """One block's deadline (``async with deadlines.after(5):``)."""

    __slots__ = ("_cancelling", "_deadlines", "_expired", "_grain", "_task", "_when")

    def __init__(self, deadlines: Deadlines, when: float) -> None:
        self._deadlines = deadlines
        self._when = when
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._grain = 0
        self._expired = False

    def expired(self) -> bool:
        """Whether the deadline passed while the block ran."""
        return self._expired

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline is for a block inside a task")
        self._task, self._cancelling = task, task.cancelling()
        self._grain = self._deadlines._add(self, self._when)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self._deadlines._remove(self, self._grain)
        if self._expired and self._task is not None and \
                self._task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
            raise TimeoutError from error

    def expire(self) -> None:
        if self._task is not None and not self._expired:
            self._expired = True
            self._task.cancel()
