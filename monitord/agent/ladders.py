"""The fix ladders running now: one task per check, each one awaited or cancelled.

The daemon starts a ladder (or the escalation of a problem that has no ladder) as a task
so that a slow fix delays only its own check; this set owns those tasks, so none is ever
left running or unawaited at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Ladders:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self._names: dict[asyncio.Task[object], str] = {}

    def start(self, name: str, work: Awaitable[object]) -> None:
        """Run ``work`` (``name``'s ladder, or its escalation) as a task of its own."""
        task = asyncio.ensure_future(work)
        task.set_name(f"heal:{name}")
        self._tasks.add(task)
        self._names[task] = name
        task.add_done_callback(self._done)

    def running(self, name: str) -> bool:
        """Whether ``name`` has a ladder (or an escalation) under way."""
        return name in self._names.values()

    def _done(self, task: asyncio.Task[object]) -> None:
        """Forget a finished ladder; an unexpected error is logged (its check stays
        pending, so it is taken up again)."""
        self._tasks.discard(task)
        self._names.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("fix ladder failed: %s", task.exception(), exc_info=task.exception())

    async def wait(self) -> None:
        """Until every ladder has ended, those started meanwhile included."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self) -> None:
        """Cancel every ladder and wait for them to end."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def __iter__(self) -> Iterator[asyncio.Task[object]]:
        return iter(set(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)
