"""Runs every check on its own interval, from one loop with one timer.

Checks start at ``start_rate`` per second in a stable order (by a hash of the name), so a
thousand checks never fire in the same instant and the first results come at once. After
that each check runs on a fixed grid, ``start + phase + k * every``, the phases of the
checks that share an interval spread evenly over it: twenty sites checked every 10 s are
probed one every half second, so a web server that dies is seen within half a second by
one of them (and its own check is asked at once), not at the next burst 10 s later. A
slow run skips the slots it missed instead of drifting; a check's next run is never less
than half an interval after the last one.

One heap holds every check's next run. The loop sleeps until the earliest one (or until
``run_now`` wakes it) and then starts every check due within ``slice_seconds`` (250 ms),
but none earlier than a tenth of its own interval: the event loop wakes about once per
slice, not once per check, and no check keeps a timer of its own. Checks that start
together share the loop's wake-ups and reads (at 1,000 http checks every 10 s, a 250 ms
slice costs a quarter less CPU per check than a 50 ms one; benchmarks/README.md).

A check runs at most once at a time, and at most ``max_concurrent`` probes run at once: a
check that comes due while all are taken waits in the heap, in order, and starts when a
run ends (no task or future waits for a slot). A hung probe only holds its own slot until
its timeout.

Two things bend the grid, both asked for by the daemon: a run may return a delay, and the
check's next run comes that much sooner (a failure being confirmed at ``retry_every``);
``run_now`` runs a check at once (a parent probed because a child failed, children probed
because their parent was fixed). The next run after either is back on the grid.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence

from monitord.probes.base import CheckBase

log = logging.getLogger(__name__)

RunFn = Callable[[CheckBase], Awaitable[float | None]]
SLICE_SECONDS = 0.25   # checks due within this much of each other start together
EARLY_SHARE = 0.1      # ... but none earlier than this share of its interval


def start_offsets(checks: Sequence[CheckBase], start_rate: float) -> dict[str, float]:
    """Seconds after start of each check's first run: spread at ``start_rate`` per second."""
    order = sorted(checks, key=_stable)
    return {c.name: (rank / start_rate) % c.every for rank, c in enumerate(order)}


def grid_phases(checks: Sequence[CheckBase]) -> dict[str, float]:
    """Each check's place in its interval: the checks of one interval spread evenly."""
    by_every: dict[float, list[CheckBase]] = {}
    for check in checks:
        by_every.setdefault(check.every, []).append(check)
    phases = {}
    for every, group in by_every.items():
        for rank, check in enumerate(sorted(group, key=_stable)):
            phases[check.name] = rank * every / len(group)
    return phases


def _stable(check: CheckBase) -> tuple[int, str]:
    return zlib.crc32(check.name.encode()), check.name


class Scheduler:
    def __init__(
        self,
        checks: Sequence[CheckBase],
        run: Callable[[CheckBase], Awaitable[object]],
        max_concurrent: int = 100,
        start_rate: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
        resume: dict[str, float] | None = None,
        slice_seconds: float = SLICE_SECONDS,
    ) -> None:
        self._checks = {c.name: c for c in checks}
        self._run = run
        self._max = max_concurrent
        self._offsets = start_offsets(checks, start_rate)
        self._phases = grid_phases(checks)
        self._clock = clock
        self._slice = slice_seconds
        self._resume = resume or {}
        self._stopping = False
        self._full = False                      # the loop sleeps until a slot is free
        self._waiter: asyncio.Future[None] | None = None   # the loop's sleep, while it sleeps
        self._heap: list[tuple[float, str]] = []
        self._grid: dict[str, float] = {}       # each check's last slot on its grid
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.next_at: dict[str, float] = {}     # each check's next run (monotonic clock)
        self.running = 0                        # probes running right now

    def stop(self) -> None:
        """Start no more runs; runs in progress finish (``run`` returns when they have)."""
        self._stopping = True
        self._wake()

    def run_now(self, name: str) -> None:
        """Run ``name`` at once, unless it is running already (that result is fresh)."""
        if name in self._checks and name not in self._tasks and not self._stopping:
            self._plan(name, self._clock())
            self._wake()

    async def run(self) -> None:
        """Run every check until stopped or cancelled; cancelling cancels every run."""
        start = self._clock()
        for name, check in self._checks.items():
            resumed = self._resume.get(name)
            self._grid[name] = (resumed or start + self._phases[name]) - check.every
            self._plan(name, resumed or start + self._offsets[name])
        try:
            while not self._stopping:
                await self._sleep()
                self._start_due()
            while self._tasks:
                await asyncio.wait(list(self._tasks.values()))
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _plan(self, name: str, at: float) -> None:
        self.next_at[name] = at
        heapq.heappush(self._heap, (at, name))

    async def _sleep(self) -> None:
        """Until the earliest run is due, or ``_wake``: one future and at most one timer
        per sleep (a timeout's cancellation and exception would cost more, each slice)."""
        delay = self._heap[0][0] - self._clock() if self._heap else math.inf
        self._full = self.running >= self._max
        if self._full:
            delay = math.inf   # nothing can start before a run ends, and that wakes us
        elif delay <= 0:
            return
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_later(delay, self._wake) if delay != math.inf else None
        try:
            await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _start_due(self) -> None:
        heap, now = self._heap, self._clock()
        later: list[tuple[float, str]] = []    # due in the slice, too early for their interval
        while heap and heap[0][0] <= now + self._slice and self.running < self._max \
                and not self._stopping:
            at, name = heapq.heappop(heap)
            if self.next_at.get(name) != at or name in self._tasks:
                continue  # an entry replaced by a sooner one, or a run still going
            check = self._checks[name]
            if at - now > check.every * EARLY_SHARE:
                later.append((at, name))
                continue
            self.running += 1
            self._tasks[name] = asyncio.create_task(self._one(check), name=f"check:{name}")
        for entry in later:
            heapq.heappush(heap, entry)

    async def _one(self, check: CheckBase) -> None:
        sooner: object = None
        try:
            sooner = await self._run(check)
        except Exception:  # one check's failure must not end the others
            log.exception("check %s: run failed", check.name)
        finally:
            self.running -= 1
        del self._tasks[check.name]
        if self._stopping:
            return
        now = self._clock()
        at = self._grid[check.name] = next_slot(self._grid[check.name], check.every,
                                                now + check.every / 2)
        if isinstance(sooner, int | float) and not isinstance(sooner, bool) and sooner > 0:
            at = min(at, now + sooner)
        self._plan(check.name, at)
        if at <= self._heap[0][0] or self._full:
            self._wake()   # the earliest run moved, or the loop waits for a free slot


def next_slot(previous: float, every: float, now: float) -> float:
    """The first slot of the grid ``previous + k * every`` (k >= 1) that is after ``now``."""
    upcoming = previous + every
    if upcoming > now:
        return upcoming
    return previous + (math.floor((now - previous) / every) + 1) * every
