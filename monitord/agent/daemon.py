"""The agent's lifecycle: load state, schedule checks, keep state, stop cleanly.

startup (open the state file, restore each check's state) -> main loop (the scheduler,
plus a task that writes changed states every few seconds) -> shutdown (cancel the checks,
write the last states, close shared resources).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from monitord.agent.runner import run_check
from monitord.agent.scheduler import Scheduler
from monitord.agent.state import Change, CheckState, Rules
from monitord.agent.statestore import StateStore
from monitord.config import Config
from monitord.errors import StateError
from monitord.model import Result, Status
from monitord.probes.base import CheckBase, ProbeContext, Shared

log = logging.getLogger(__name__)

STATE_FILE = "state.db"
FLUSH_SECONDS = 2.0
STATE_IO_TIMEOUT = 10.0


class Agent:
    def __init__(self, config: Config, shared: Shared | None = None) -> None:
        self.config = config
        self.shared = shared or Shared()
        self.states: dict[str, CheckState] = {}
        self._contexts = {c.name: ProbeContext(self.shared) for c in config.checks}
        self._parents = {c.name: c.depends_on for c in config.checks}
        self._dirty: set[str] = set()
        self._store: StateStore | None = None

    async def start(self) -> None:
        """Open the state file and restore the state of every configured check."""
        path = Path(self.config.agent.state_dir) / STATE_FILE
        self._store = await asyncio.to_thread(StateStore, path)
        saved = await asyncio.to_thread(self._store.load)
        names = {c.name for c in self.config.checks}
        self.states = {n: saved.get(n) or CheckState(n) for n in names}
        await asyncio.to_thread(self._store.forget, names)
        restored = sum(1 for n in names if n in saved)
        log.info("monitord: watching %d checks from %d files on %s; state of %d restored "
                 "from %s", len(names), len(self.config.files), self.config.host,
                 restored, path)

    async def run(self, stop: asyncio.Event) -> None:
        """Run the checks until ``stop`` is set, then shut down."""
        agent = self.config.agent
        scheduler = Scheduler(self.config.checks, self.run_once, agent.max_concurrent_probes,
                              agent.start_rate)
        async with asyncio.TaskGroup() as group:
            checks = group.create_task(scheduler.run(), name="scheduler")
            flusher = group.create_task(self._flush_loop(), name="state-flusher")
            await stop.wait()
            log.info("monitord: stopping")
            checks.cancel()
            flusher.cancel()
        await self.close()

    async def close(self) -> None:
        await self.flush()
        if self._store is not None:
            self._store.close()
            self._store = None
        await self.shared.close()

    async def run_once(self, check: CheckBase) -> Result:
        """Run ``check`` now, update its state and log what changed."""
        result = await run_check(check, self._contexts[check.name])
        state = self.states.setdefault(check.name, CheckState(check.name))
        was = state.status
        changes = state.update(result, _rules(check))
        suppressed = self._suppressor(check) if state.status is not Status.OK else None
        moved = suppressed != state.suppressed_by
        state.suppressed_by = suppressed
        if changes or moved or was is not Status.OK or result.status is not Status.OK:
            self._dirty.add(check.name)
        for change in changes:
            _log_change(check, state, change, result)
        log.debug("check %s: %s %s", check.name, result.status.name, result.summary)
        return result

    def _suppressor(self, check: CheckBase) -> str | None:
        for parent in self._parents.get(check.name, []):
            parent_state = self.states.get(parent)
            if parent_state is not None and parent_state.hard_failing:
                return parent
        return None

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except StateError as e:
                log.error("%s; will retry", e)

    async def flush(self) -> None:
        if not self._dirty or self._store is None:
            return
        dirty = [self.states[n] for n in sorted(self._dirty) if n in self.states]
        self._dirty.clear()
        try:
            async with asyncio.timeout(STATE_IO_TIMEOUT):
                await asyncio.to_thread(self._store.save, dirty, time.time())
        except (StateError, TimeoutError):
            self._dirty.update(s.name for s in dirty)
            raise


def _rules(check: CheckBase) -> Rules:
    return Rules(check.fail_after, check.recover_after, check.flap_window, check.flap_threshold)


def _log_change(check: CheckBase, state: CheckState, change: Change, result: Result) -> None:
    status = result.status.name
    suffix = f" [suppressed by {state.suppressed_by}]" if state.suppressed_by else ""
    if change is Change.FIRST:
        detail = status if result.status is Status.OK else f"{status} (soft 1/{check.fail_after})"
    elif change is Change.SOFT:
        detail = f"{status} (soft {state.fail_count}/{check.fail_after})"
    elif change is Change.HARD:
        detail = f"{status} (hard, after {state.fail_count} failures)"
    elif change is Change.CHANGED:
        detail = f"{status} (hard)"
    elif change is Change.RECOVERING:
        detail = f"OK (recovering {state.ok_count}/{check.recover_after})"
    elif change is Change.RECOVERED:
        detail = "OK (recovered)"
    elif change is Change.CLEARED:
        detail = "OK (soft failure cleared)"
    elif change is Change.FLAPPING:
        log.warning("%s: flapping: its state changed in %d of its last %d runs", check.name,
                    _flips(state), len(state.history) - 1)
        return
    else:
        log.info("%s: no longer flapping", check.name)
        return
    level = logging.WARNING if change in (Change.HARD, Change.CHANGED) else logging.INFO
    log.log(level, "%s: %s: %s%s", check.name, detail, result.summary, suffix)


def _flips(state: CheckState) -> int:
    pairs = zip(state.history, state.history[1:], strict=False)
    return sum((a == 0) != (b == 0) for a, b in pairs)

