"""Many sites down at once with no known parent failing: one incident, "N sites down on
HOST", with the sites attached, instead of N.

A discovered site that fails while none of its parents (``depends_on``) is failing asks
here before it acts. While fewer than ``[sites.down]`` min_sites (and share) of the sites
are down, it waits for ``gather`` after its failure began, to see whether others follow
(a whole server's sites fail within one probe cycle); then it goes its own way. Once
enough are down, one problem is filed under the name ``sites-down``, and each of those
sites joins it as it would join a failing parent's incident (``suppressed_by``). When
fewer than min_sites remain down, the incident is resolved; the sites still down then
escalate on their own.

The agent's flow consults ``waited_on`` (its hook for failures with no known parent) and
feeds every result to ``observe``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from monitord.agent.healer import Outcome
from monitord.discover.rules import DownRules
from monitord.model import Result, Status
from monitord.probes.base import CheckBase

log = logging.getLogger("monitord.sites")
NAME = "sites-down"
SHOWN = 20

Escalate = Callable[[Outcome], Awaitable[None]]
Recover = Callable[[str, Result], Awaitable[None]]


class Crowd:
    def __init__(self, sites: set[str], rules: DownRules, host: str, escalate: Escalate,
                 recover: Recover, clock: Callable[[], float] = time.time) -> None:
        self.sites = sites                      # the discovered sites' HTTP checks
        self.rules = rules
        self.host = host
        self._escalate = escalate
        self._recover = recover
        self._clock = clock
        self.down: dict[str, str] = {}          # site check -> its failure, no parent known
        self._said: dict[str, str] = {}         # failing site check -> its last summary
        self.state = "idle"                     # idle, filing, open, resolving
        self._settle_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def resume(self, was_open: bool) -> None:
        """Its incident was open when the daemon stopped: open, and judged again once the
        sites have had time to be probed."""
        if was_open:
            self.state = "open"
            self._settle_until = self._clock() + 3 * self.rules.gather

    @property
    def threshold(self) -> int:
        return max(self.rules.min_sites, math.ceil(self.rules.share * len(self.sites)))

    def waited_on(self, name: str, failed_at: float) -> tuple[str | None, bool]:
        """What a failing site with no failing parent waits on: (sites-down, whether its
        incident is filed), or (None, False) to go its own way."""
        if name not in self.sites:
            return None, False
        self.down.setdefault(name, self._said.get(name, ""))
        if self.state == "open":
            return NAME, True
        if len(self.down) >= self.threshold:
            if self.state == "idle":
                self._start(self._file())
            return NAME, False
        if self.state == "idle" and self._clock() - failed_at < self.rules.gather:
            return NAME, False
        return None, False

    def observe(self, check: CheckBase, result: Result) -> None:
        """Every result: an OK site is no longer down; fewer than min_sites down ends it."""
        if check.name not in self.sites:
            return
        if result.status is not Status.OK:
            self._said[check.name] = result.summary
            if check.name in self.down:
                self.down[check.name] = result.summary
            return
        self._said.pop(check.name, None)
        self.down.pop(check.name, None)
        if self.state == "open" and len(self.down) < self.rules.min_sites \
                and self._clock() >= self._settle_until:
            self._start(self._resolve())

    def _start(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _file(self) -> None:
        self.state = "filing"
        names = sorted(self.down)
        summary = f"{len(names)} sites down on {self.host}, with no known cause failing"
        lines = [f"{n}: {self.down[n]}"[:200] for n in names[:SHOWN]]
        more = [f"... and {len(names) - SHOWN} more"] if len(names) > SHOWN else []
        reason = "\n".join(["many sites failed at once and none of the checks they depend "
                            "on is failing; the sites are attached to this incident:",
                            *lines, *more])
        log.warning("%s: %s", NAME, summary)
        try:
            await self._escalate(Outcome("problem", NAME, self.rules.priority,
                                         reason[:2000], Result(Status.CRITICAL, summary)))
        finally:
            self.state = "open"

    async def _resolve(self) -> None:
        self.state = "resolving"
        summary = f"{len(self.down)} sites down on {self.host} now (fewer than " \
                  f"{self.rules.min_sites})"
        log.info("%s: over: %s", NAME, summary)
        try:
            await self._recover(NAME, Result(Status.OK, summary))
        finally:
            self.state = "idle"

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
