"""The agent's lifecycle, read top to bottom, around its checks' flow (``flow.CheckFlow``).

``start`` (open the state file, which holds the outbox too; restore each check's state;
open the store's sender; tell the store of the maintenance windows again) -> ``run``
(the scheduler, the chores: states written, heartbeat, STATUS and watchdog; the grace's
end; the outbox's delivery; the status endpoint; until asked to stop) -> ``close`` (let
running probes and fixes finish within the shutdown timeout, cancel the rest, write the
last states, deliver what the outbox can within a few seconds, close).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from monitord.agent import status
from monitord.agent.delivery import Deliverer, make_sender
from monitord.agent.events import maintenance
from monitord.agent.flow import STATE_IO_TIMEOUT, CheckFlow
from monitord.agent.healer import Healer
from monitord.agent.outbox import Limits, Outbox, migrate_outbox
from monitord.agent.scheduler import Scheduler
from monitord.agent.sites import SiteWork
from monitord.agent.state import CheckState
from monitord.agent.statestore import HOST_SCOPE, StateStore
from monitord.agent.systemd import Notifier
from monitord.config import Config
from monitord.errors import StateError
from monitord.probes.base import Shared
from monitord.texts import plural

log = logging.getLogger(__name__)

STATE_FILE = "state.db"
OLD_OUTBOX_FILE = "outbox.db"    # before the outbox moved into the state file
FLUSH_SECONDS = 2.0
SHUTDOWN_DELIVERY_SECONDS = 5.0


class Agent(CheckFlow):
    def __init__(self, config: Config, shared: Shared | None = None,
                 notifier: Notifier | None = None, started: float | None = None,
                 resume: dict[str, float] | None = None,
                 reload: Callable[[], None] | None = None) -> None:
        super().__init__(config, shared or Shared(),
                         started if started is not None else time.monotonic())
        # Discovered sites: a changed set asks for a reload (the SIGHUP path).
        self.site_work = SiteWork(self, reload or (lambda: None))
        self._keep_start = started is not None
        self.notifier = notifier or Notifier({})
        self._outbox_depth = 0
        self._status_runner: status.Endpoint | None = None
        self._resume = resume or {}
        self._closers: list[Callable[[], Awaitable[None]]] = []
        # A stop for good (not a reload): the store hears that an admin stopped it.
        self.stopping_for_good = False

    async def start(self) -> None:
        """Open the state file and restore the state of every configured check."""
        path = Path(self.config.agent.state_dir) / STATE_FILE
        self._store = await asyncio.to_thread(StateStore, path)
        saved = await asyncio.to_thread(self._store.load)
        names = {c.name for c in self.config.checks}
        self.states.clear()      # in place: the dependency graph reads this dict
        self.states.update({n: saved.get(n) or CheckState(n) for n in names})
        await asyncio.to_thread(self._store.forget, names)
        self._healer = Healer(self.config.healer, self._store, self.probe, self.config.host,
                              self.config.agent.state_dir)
        state_dir = Path(self.config.agent.state_dir)
        limits = Limits(self.config.outbox.max_rows, self.config.outbox.max_bytes,
                        self.config.outbox.min_free_bytes)
        self.outbox = await asyncio.to_thread(Outbox, self._store, limits)
        await asyncio.to_thread(migrate_outbox, state_dir / OLD_OUTBOX_FILE, self.outbox)
        sender, closer = await make_sender(self.config.store_url, self.config.store,
                                           self.config.policy)
        self._closers.append(closer)
        self.deliverer = Deliverer(self.outbox, sender, self.config.outbox.batch,
                                   self._undeliverable)
        await self._tell_windows()
        await self.site_work.start(saved, names)
        if not self._keep_start:
            self._started = time.monotonic()
        restored = sum(1 for n in names if n in saved)
        dry = "; dry run: fixes are logged, not run" if self.config.healer.dry_run else ""
        log.info("monitord: watching %s from %s on %s; state of %d restored from %s; "
                 "incidents go to %s%s", plural(len(names), "check"),
                 plural(len(self.config.files), "file"), self.config.host, restored, path,
                 _shown(self.config.store_url), dry)

    async def _tell_windows(self) -> None:
        """Tell the store of every maintenance window in the state file again: one set
        before an upgrade, or while the store could not be reached, reaches it (the store
        takes the same window twice as once). One that expired while the daemon was down
        is told as expired, then forgotten."""
        try:
            async with asyncio.timeout(STATE_IO_TIMEOUT):
                windows = await asyncio.to_thread(self.store.windows)
        except (StateError, TimeoutError) as e:
            log.error("cannot read maintenance windows to tell the store (%s)", e)
            return
        now = time.time()
        for window in windows:
            check = None if window.scope == HOST_SCOPE else window.scope
            told = await self.send(maintenance(self.config.host, check, window.until,
                                               window.owner, window.reason))
            if told and window.until <= now:
                try:
                    async with asyncio.timeout(STATE_IO_TIMEOUT):
                        await asyncio.to_thread(self.store.forget_window, window)
                except (StateError, TimeoutError) as e:     # told again at the next start
                    log.error("cannot forget an expired maintenance window (%s)", e)
        if windows:
            log.info("monitord: maintenance windows told to the store again: %s",
                     ", ".join(f"{w.what} ({'expired' if w.until <= now else 'running'})"
                               for w in windows))

    async def run(self, stop: asyncio.Event) -> None:
        """Run the checks until ``stop`` is set, then shut down."""
        agent = self.config.agent
        scheduler = Scheduler(self.config.checks, self.scheduled, agent.max_concurrent_probes,
                              agent.start_rate, resume=self._resume)
        self._scheduler = scheduler
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(scheduler.run(), name="scheduler"),
                         group.create_task(self._chores(), name="chores"),
                         group.create_task(self._after_grace(), name="grace")]
                if self.deliverer is not None:
                    tasks.append(group.create_task(self.deliverer.run(), name="delivery"))
                tasks.append(group.create_task(self.site_work.run(), name="sites"))
                self._status_runner = await status.serve(self, self.config.status.listen)
                await asyncio.sleep(0)  # let the scheduler start before saying ready
                self.notifier.ready(self.status_line())
                await stop.wait()
                log.info("monitord: stopping")
                await self._wind_down(scheduler, tasks[0])
                if self.stopping_for_good:
                    await self.send(self.events.stopped())
                for task in tasks:
                    task.cancel()
        finally:
            await self.close()

    async def close(self) -> None:
        """Cancel ladders (their checks stay pending), save states, deliver what can be."""
        if self._status_runner is not None:
            await self._status_runner.cleanup()
            self._status_runner = None
        await self._ladders.cancel()
        await self.site_work.close()
        try:
            await self.flush()
        except (StateError, TimeoutError) as e:
            log.error("cannot save check states at shutdown: %s", e)
        if self.deliverer is not None:
            try:
                left = await self.deliverer.flush(SHUTDOWN_DELIVERY_SECONDS)
            except (StateError, TimeoutError) as e:
                log.error("outbox not read at shutdown: %s; it is kept for the next start", e)
                left = 0
            if left:
                log.info("monitord: %d events stay in the outbox for the next start", left)
            self.deliverer = None
        for closer in self._closers:
            await closer()
        self._closers.clear()
        if self.outbox is not None:
            self.outbox.close()
            self.outbox = None
        if self._store is not None:
            self._store.close()
            self._store = None
        await self.shared.close()

    async def _wind_down(self, scheduler: Scheduler, checks: asyncio.Task[None]) -> None:
        """Start nothing new; let running probes and fixes finish within the shutdown
        timeout; cancel the rest and say how many."""
        scheduler.stop()
        running = [checks, *self._ladders]
        _, late = await asyncio.wait(running, timeout=self.config.agent.shutdown_timeout)
        if late:
            probes = scheduler.running if checks in late else 0
            fixes = len([t for t in late if t is not checks])
            log.warning("monitord: shutdown timeout: cancelling %d running probes and %d fix "
                        "ladders (their checks stay pending)", probes, fixes)

    def schedule(self) -> dict[str, float]:
        """When each check runs next (monotonic clock), to keep after a reload."""
        return dict(self._scheduler.next_at) if self._scheduler is not None else {}

    @property
    def probes_running(self) -> int:
        return self._scheduler.running if self._scheduler is not None else 0

    @property
    def outbox_depth(self) -> int:
        return self._outbox_depth

    def status_line(self) -> str:
        """One line for systemd's STATUS: "42 checks, 2 failing, 1 fixing, outbox 0"."""
        failing = sum(1 for s in self.states.values() if s.hard_failing)
        fixing = len(self._ladders)
        return (f"{len(self.config.checks)} checks, {failing} failing, {fixing} fixing, "
                f"outbox {self._outbox_depth}")

    async def _chores(self) -> None:
        """Every couple of seconds, on the event loop's own schedule: write the changed
        states, send the heartbeat when it is due (it waits in memory, never on disk),
        refresh STATUS and ping the watchdog (the pings stop when the loop stalls, and
        systemd restarts the daemon)."""
        every = min(FLUSH_SECONDS, self.notifier.watchdog_seconds or FLUSH_SECONDS)
        heartbeat_due = 0.0
        while True:
            if time.monotonic() >= heartbeat_due:
                await self.send(self.events.heartbeat(self.config.heartbeat.every))
                heartbeat_due = time.monotonic() + self.config.heartbeat.every
            try:
                await self.flush()
                if self.outbox is not None:
                    async with asyncio.timeout(STATE_IO_TIMEOUT):
                        self._outbox_depth = await asyncio.to_thread(self.outbox.depth)
            except (StateError, TimeoutError) as e:
                log.error("cannot save check states (%s); will retry", e)
            if self.notifier.watchdog_seconds:
                self.notifier.watchdog()
            self.notifier.status(self.status_line())
            await asyncio.sleep(every)

def _shown(url: str) -> str:
    return url.removeprefix("sqlite://") if url.startswith("sqlite://") else url
