"""Runs every check on its own interval, each in its own task.

Checks start at ``start_rate`` per second in a stable order (by a hash of the name), so a
thousand checks never fire in the same instant and a restart keeps each check's phase.
After that each check runs on a fixed grid, ``start + offset + k * every``: a slow run
skips the slots it missed instead of drifting. A global semaphore caps how many probes
run at once; a hung probe only holds its own slot until its timeout.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence

from monitord.probes.base import CheckBase

log = logging.getLogger(__name__)

RunFn = Callable[[CheckBase], Awaitable[object]]


def start_offsets(checks: Sequence[CheckBase], start_rate: float) -> dict[str, float]:
    """Seconds after start of each check's first run: spread at ``start_rate`` per second."""
    order = sorted(checks, key=lambda c: (zlib.crc32(c.name.encode()), c.name))
    return {c.name: (rank / start_rate) % c.every for rank, c in enumerate(order)}


class Scheduler:
    def __init__(
        self,
        checks: Sequence[CheckBase],
        run: RunFn,
        max_concurrent: int = 100,
        start_rate: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
        resume: dict[str, float] | None = None,
    ) -> None:
        self._checks = list(checks)
        self._run = run
        self._slots = asyncio.Semaphore(max_concurrent)
        self._offsets = start_offsets(self._checks, start_rate)
        self._clock = clock
        self._stopping = asyncio.Event()
        self._resume = resume or {}
        self.next_at: dict[str, float] = {}  # each check's next run (monotonic clock)
        self.running = 0  # probes running right now

    def stop(self) -> None:
        """Start no more runs; runs in progress finish (``run`` returns when they have)."""
        self._stopping.set()

    async def run(self) -> None:
        """Run every check until cancelled; cancelling cancels and awaits every check task."""
        start = self._clock()
        async with asyncio.TaskGroup() as group:
            for check in self._checks:
                first = self._resume.get(check.name, start + self._offsets[check.name])
                group.create_task(self._loop(check, first), name=f"check:{check.name}")

    async def _loop(self, check: CheckBase, next_at: float) -> None:
        while not self._stopping.is_set():
            self.next_at[check.name] = next_at
            delay = next_at - self._clock()
            if delay > 0:
                try:
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                    return
                except TimeoutError:
                    pass
            async with self._slots:
                self.running += 1
                try:
                    await self._run(check)
                except Exception:  # one check's failure must not end the others
                    log.exception("check %s: run failed", check.name)
                finally:
                    self.running -= 1
            next_at = _next_slot(next_at, check.every, self._clock())
            self.next_at[check.name] = next_at


def _next_slot(previous: float, every: float, now: float) -> float:
    """The first slot of the grid ``previous + k * every`` (k >= 1) that is after ``now``."""
    upcoming = previous + every
    if upcoming > now:
        return upcoming
    return previous + (math.floor((now - previous) / every) + 1) * every
