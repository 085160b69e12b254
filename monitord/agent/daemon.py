"""The agent: its lifecycle, and the one place where a check's decisions are carried out.

Lifecycle: ``start`` (open the state file and the outbox, restore each check's state)
-> ``run`` (the scheduler, a task that writes changed states every few seconds, the
healer's ladders, the outbox's delivery and the heartbeat, until asked to stop) ->
``close`` (cancel checks and ladders, write the last states, deliver what the outbox can
within a few seconds, close).

A check's flow: the runner probes it -> its state takes the result in and decides
(``CheckState.observe``) -> the agent does what was decided: start the healer's ladder,
escalate, send a recovery, or nothing. The healer returns its outcome; ``escalate`` here
is the only way a problem reaches the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from monitord.agent import status
from monitord.agent.delivery import Deliverer, make_sender
from monitord.agent.events import EventMaker, event_renderer
from monitord.agent.healer import Healer, Outcome
from monitord.agent.ladders import Ladders
from monitord.agent.outbox import Limits, Outbox
from monitord.agent.runner import run_check
from monitord.agent.scheduler import Scheduler
from monitord.agent.state import CheckState, Decision, Rules, Situation, Verdict, log_change
from monitord.agent.statestore import Maintenance, StateStore
from monitord.agent.systemd import Notifier
from monitord.config import Config
from monitord.durations import format_duration
from monitord.errors import StateError
from monitord.events import Event
from monitord.model import Result, Status
from monitord.probes.base import CheckBase, ProbeContext, Shared
from monitord.texts import plural

log = logging.getLogger(__name__)

STATE_FILE = "state.db"
OUTBOX_FILE = "outbox.db"
FLUSH_SECONDS = 2.0
STATE_IO_TIMEOUT = 10.0
SHUTDOWN_DELIVERY_SECONDS = 5.0
TICK_SECONDS = 10.0

OutcomeHandler = Callable[[Outcome], Awaitable[None]]


class Agent:
    def __init__(self, config: Config, shared: Shared | None = None,
                 notifier: Notifier | None = None, started: float | None = None,
                 resume: dict[str, float] | None = None) -> None:
        self.config = config
        self.shared = shared or Shared()
        self.states: dict[str, CheckState] = {}
        self.outcome_handlers: list[OutcomeHandler] = []
        self._contexts = {c.name: ProbeContext(self.shared) for c in config.checks}
        self._direct = {c.name: list(c.depends_on) for c in config.checks}
        self._parents = ancestors(config.checks)
        self._children = descendants(config.checks)
        self._dirty: set[str] = set()
        self._store: StateStore | None = None
        self._healer: Healer | None = None
        self._ladders = Ladders()
        self._started = started if started is not None else time.monotonic()
        self._keep_start = started is not None
        self.notifier = notifier or Notifier({})
        self._outbox_depth = 0
        self.last_duration: dict[str, float] = {}
        self.outcome_counts: dict[tuple[str, str], int] = {}
        self._status_runner: web.AppRunner | None = None
        self._scheduler: Scheduler | None = None
        self._resume = resume or {}
        self.outbox: Outbox | None = None
        self.deliverer: Deliverer | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.events = EventMaker(config.host, event_renderer(config.templates.dir))

    @property
    def store(self) -> StateStore:
        if self._store is None:
            raise StateError("the agent has not started")
        return self._store

    async def start(self) -> None:
        """Open the state file and restore the state of every configured check."""
        path = Path(self.config.agent.state_dir) / STATE_FILE
        self._store = await asyncio.to_thread(StateStore, path)
        saved = await asyncio.to_thread(self._store.load)
        names = {c.name for c in self.config.checks}
        self.states = {n: saved.get(n) or CheckState(n) for n in names}
        await asyncio.to_thread(self._store.forget, names)
        self._healer = Healer(self.config.healer, self._store, self.probe, self.config.host,
                              self.config.agent.state_dir)
        state_dir = Path(self.config.agent.state_dir)
        limits = Limits(self.config.outbox.max_rows, self.config.outbox.max_bytes,
                        self.config.outbox.min_free_bytes)
        self.outbox = await asyncio.to_thread(Outbox, state_dir / OUTBOX_FILE, limits)
        sender, closer = await make_sender(self.config.store_url, self.config.store,
                                           self.config.policy)
        self._closers.append(closer)
        self.deliverer = Deliverer(self.outbox, sender, self.config.outbox.batch)
        if not self._keep_start:
            self._started = time.monotonic()
        restored = sum(1 for n in names if n in saved)
        dry = "; dry run: fixes are logged, not run" if self.config.healer.dry_run else ""
        log.info("monitord: watching %s from %s on %s; state of %d restored from %s; "
                 "incidents go to %s%s", plural(len(names), "check"),
                 plural(len(self.config.files), "file"), self.config.host, restored, path,
                 _shown(self.config.store_url), dry)

    async def run(self, stop: asyncio.Event) -> None:
        """Run the checks until ``stop`` is set, then shut down."""
        agent = self.config.agent
        scheduler = Scheduler(self.config.checks, self.scheduled, agent.max_concurrent_probes,
                              agent.start_rate, resume=self._resume)
        self._scheduler = scheduler
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(scheduler.run(), name="scheduler"),
                    group.create_task(self._flush_loop(), name="state-flusher"),
                    group.create_task(self._heartbeats(), name="heartbeat"),
                ]
                if self.deliverer is not None:
                    tasks.append(group.create_task(self.deliverer.run(), name="delivery"))
                tasks.append(group.create_task(self._tick(), name="notify"))
                tasks.append(group.create_task(self._after_grace(), name="grace"))
                self._status_runner = await status.serve(self, self.config.status.listen)
                await asyncio.sleep(0)  # let the scheduler start before saying ready
                self.notifier.ready(self.status_line())
                await stop.wait()
                log.info("monitord: stopping")
                await self._wind_down(scheduler, tasks[0])
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

    async def scheduled(self, check: CheckBase) -> float | None:
        """The scheduler's run of ``check``; how soon to run it again when that must be
        sooner than its grid: a failure being confirmed, or waiting on a parent."""
        result = await self.run_once(check)
        state = self.states.get(check.name)
        if result is None or state is None or result.status is Status.OK:
            return None
        if state.phase == "soft" or (state.wants_action() and state.suppressed_by):
            return min(check.retry_every, check.every)
        return None

    async def run_once(self, check: CheckBase) -> Result | None:
        """Probe ``check``, let its state decide, carry the decision out.

        While the check's ladder runs, scheduled runs are skipped: the ladder probes the
        check itself after each fix.
        """
        if self.fixing(check.name):
            return None
        result, verdict = await self._observe(check)
        await self._act(check, result, verdict)
        return result

    async def probe(self, check: CheckBase) -> Result:
        """Run ``check`` now (the healer's re-probe): its state takes the result in, and a
        recovery is sent; nothing else is acted on while its ladder runs."""
        result, verdict = await self._observe(check)
        if verdict.decision is Decision.RECOVER:
            await self._act(check, result, verdict)
        return result

    async def _observe(self, check: CheckBase) -> tuple[Result, Verdict]:
        result = await run_check(check, self._contexts[check.name])
        self.last_duration[check.name] = round(result.duration_seconds, 6)
        state = self.states.setdefault(check.name, CheckState(check.name))
        was = state.status if state.seen else Status.OK
        situation = await self._situation(check, state, result)
        verdict = state.observe(result, _rules(check), situation)
        if verdict.changes or verdict.moved or was is not Status.OK \
                or result.status is not Status.OK:
            self._dirty.add(check.name)
        for change in verdict.changes:
            log_change(check, state, change, result)
        log.debug("check %s: %s %s", check.name, result.status.name, result.summary)
        if (result.status is Status.OK) != (was is Status.OK):
            # A new failure: are its parents fine? A failure over: its dependents that
            # waited on it may act now.
            self._probe(self._direct[check.name] if result.status is not Status.OK
                        else self._failing(self._children[check.name]))
        if verdict.decision is Decision.WAIT and verdict.reason == "parent":
            self._probe([state.suppressed_by or ""])
        return result, verdict

    async def _situation(self, check: CheckBase, state: CheckState,
                         result: Result) -> Situation:
        """What the state needs to know around ``check``; maintenance and budgets are read
        only when a hard failure may be acted on."""
        parent, settled = (None, False)
        if result.status is not Status.OK:
            parent, settled = self._parent_of(check.name, state.failed_at or result.at)
        holding, allowed = "", True
        if result.status is not Status.OK and state.fail_count + 1 >= check.fail_after:
            if await self._maintenance(check.name) is not None:
                holding = "maintenance"
            elif time.monotonic() - self._started < self.config.healer.grace:
                holding = "grace"   # just started: the machine may still be settling
                allowed = bool(check.heal) and (await self._budget_left(check)) > 0
        return Situation(parent, settled, self.fixing(check.name), holding, bool(check.heal),
                         allowed)

    def _parent_of(self, name: str, failed_at: float) -> tuple[str | None, bool]:
        """The nearest parent ``name``'s failure waits on, and whether that parent's own
        failure is settled (escalated, its ladder over): then the failure joins the
        incident of the root cause, up the chain of parents it joined."""
        for parent in self._parents[name]:
            state = self.states.get(parent)
            if state is None:
                continue
            if self.fixing(parent) or state.wants_action():
                return parent, False           # its ladder runs, or is about to
            if state.status is not Status.OK:
                if state.hard_failing and state.escalated:
                    return self._root(parent), True
                return parent, False           # failing, not yet confirmed or handled
            if state.last_run < failed_at:
                return parent, False           # fine, but not judged since this failed
        return None, False

    def _root(self, name: str) -> str:
        seen = {name}
        while (up := self.states[name].suppressed_by) is not None and up not in seen:
            seen.add(up)
            name = up
        return name

    def _failing(self, names: list[str]) -> list[str]:
        return [n for n in names if (s := self.states.get(n)) is not None
                and s.status is not Status.OK]

    def _probe(self, names: list[str]) -> None:
        """Probe ``names`` at once (those not running already)."""
        if self._scheduler is not None:
            for name in names:
                self._scheduler.run_now(name)

    async def _act(self, check: CheckBase, result: Result, verdict: Verdict) -> None:
        state = self.states[check.name]
        if verdict.decision is Decision.RECOVER:
            if await self.send(self.events.recovery(check.name, result)):
                state.escalated = False
                self._dirty.add(check.name)
        elif verdict.decision is Decision.ESCALATE:
            outcome = Outcome("problem", check.name, check.priority_for(result.status),
                              verdict.reason, result, suppressed_by=state.suppressed_by,
                              flapping=verdict.flapping)
            self._ladders.start(check.name, self._escalated(outcome, state))
        elif verdict.decision is Decision.FIX:
            self._ladders.start(check.name, self._heal(check, result, state))

    async def _heal(self, check: CheckBase, result: Result, state: CheckState) -> Outcome:
        """Run the ladder and escalate its outcome; the failure stays pending unless the
        outcome was sent, so a ladder cut short (shutdown, reload, crash) is taken up again."""
        assert self._healer is not None
        try:
            outcome = await self._healer.run(check, result)
        except (StateError, TimeoutError, OSError) as e:
            outcome = Outcome("problem", check.name, check.priority_for(result.status),
                              f"the healer failed ({e or type(e).__name__}); nothing "
                              "was fixed", result)
        return await self._escalated(outcome, state)

    async def _escalated(self, outcome: Outcome, state: CheckState) -> Outcome:
        await self.escalate(outcome)
        state.handled()
        self._dirty.add(state.name)
        # Its dependents waited on this outcome: they look again now, not a cycle later.
        self._probe(self._failing(self._children[state.name]))
        return outcome

    async def _after_grace(self) -> None:
        """When the start-up grace ends, failures that waited for it are handled at once."""
        await asyncio.sleep(max(self._started + self.config.healer.grace - time.monotonic(), 0))
        self._probe([name for name, state in self.states.items() if state.wants_action()])

    async def _budget_left(self, check: CheckBase) -> int:
        try:
            return (await self.budgets_left([check])).get(check.name, 0)
        except (StateError, TimeoutError):
            return 1    # cannot tell: let the healer look at the budget itself

    async def wait_for_ladders(self) -> None:
        """Wait until every running fix ladder has ended (and escalated)."""
        await self._ladders.wait()

    async def _maintenance(self, check: str) -> Maintenance | None:
        try:
            async with asyncio.timeout(STATE_IO_TIMEOUT):
                return await asyncio.to_thread(self.store.maintenance_of, check, time.time())
        except (StateError, TimeoutError) as e:
            log.error("cannot read maintenance windows (%s); acting as if there were none", e)
            return None

    async def escalate(self, outcome: Outcome) -> None:
        """Log an outcome, count it, and send it to the store through the outbox."""
        key = (outcome.check, outcome.kind if outcome.steps else f"{outcome.kind}-no-fix")
        self.outcome_counts[key] = self.outcome_counts.get(key, 0) + 1
        if outcome.kind == "cleared":
            log.info("%s: %s; none of its own fixes ran", outcome.check, outcome.reason)
        elif outcome.kind == "healed":
            log.info("%s: healed: %s after %d step%s", outcome.check, outcome.reason,
                     len(outcome.steps), "s" if len(outcome.steps) != 1 else "")
        else:
            window = await self._maintenance(outcome.check)
            if window is not None:
                log.info("%s: not escalating (%s): %s is in maintenance until %s",
                         outcome.check, outcome.reason, window.what,
                         format_duration(window.until - time.time()))
                return
            log.warning("%s: escalating %s problem: %s: %s", outcome.check,
                        outcome.priority.value,
                        outcome.reason, outcome.result.summary)
            state = self.states.get(outcome.check)
            if state is not None:
                # Saved before the event is: after a crash between the two, a recovery
                # is still sent (the store ignores one with no incident).
                state.escalated = True
                self._dirty.add(outcome.check)
                try:
                    await self.flush()
                except (StateError, TimeoutError) as e:
                    log.error("cannot save check states (%s); will retry", e)
        if outcome.kind != "cleared":
            await self.send(self.events.from_outcome(outcome))
        for handler in self.outcome_handlers:
            await handler(outcome)

    async def send(self, event: Event) -> bool:
        """Put ``event`` in the outbox (durably) and wake the delivery; False if it failed."""
        if self.outbox is None:
            log.error("no outbox: event not kept: %s", event.title or event.kind)
            return False
        try:
            async with asyncio.timeout(STATE_IO_TIMEOUT):
                await asyncio.to_thread(self.outbox.put, event)
        except (StateError, TimeoutError) as e:
            log.error("cannot keep an event in the outbox (%s): %s", e, event.title or event.kind)
            return False
        if self.deliverer is not None:
            self.deliverer.wake()
        return True

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

    def fixing(self, name: str) -> bool:
        """Whether ``name``'s ladder (or the escalation of its problem) is under way."""
        return self._ladders.running(name) or (
            self._healer is not None and self._healer.busy(name))

    async def budgets_left(self, checks: list[CheckBase] | None = None) -> dict[str, int]:
        """Ladder runs each check may still make in its heal window."""
        if self._store is None:
            return {}
        async with asyncio.timeout(STATE_IO_TIMEOUT):
            return await asyncio.to_thread(self._store.budgets_left,
                                           checks or self.config.checks, time.time())

    def status_line(self) -> str:
        """One line for systemd's STATUS: "42 checks, 2 failing, 1 fixing, outbox 0"."""
        failing = sum(1 for s in self.states.values() if s.hard_failing)
        fixing = len(self._ladders)
        return (f"{len(self.config.checks)} checks, {failing} failing, {fixing} fixing, "
                f"outbox {self._outbox_depth}")

    async def _tick(self) -> None:
        """Ping the watchdog and refresh STATUS from the event loop's own schedule."""
        every = min(self.notifier.watchdog_seconds or TICK_SECONDS, TICK_SECONDS)
        while True:
            if self.outbox is not None:
                try:
                    async with asyncio.timeout(STATE_IO_TIMEOUT):
                        self._outbox_depth = await asyncio.to_thread(self.outbox.depth)
                except (StateError, TimeoutError):
                    pass
            if self.notifier.watchdog_seconds:
                self.notifier.watchdog()
            self.notifier.status(self.status_line())
            await asyncio.sleep(every)

    async def _heartbeats(self) -> None:
        every = self.config.heartbeat.every
        while True:
            await self.send(self.events.heartbeat(every))
            await asyncio.sleep(every)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except (StateError, TimeoutError) as e:
                log.error("cannot save check states (%s); will retry", e)

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


def _shown(url: str) -> str:
    return url.removeprefix("sqlite://") if url.startswith("sqlite://") else url


def _rules(check: CheckBase) -> Rules:
    return Rules(check.fail_after, check.recover_after, check.flap_window, check.flap_threshold,
                 check.flap_quiet)


def ancestors(checks: list[CheckBase]) -> dict[str, list[str]]:
    """Each check's parents, transitively, nearest first (config refuses cycles)."""
    direct = {c.name: list(c.depends_on) for c in checks}
    found: dict[str, list[str]] = {}
    for name in direct:
        order: list[str] = []
        queue = list(direct[name])
        while queue:
            parent = queue.pop(0)
            if parent not in order and parent != name and parent in direct:
                order.append(parent)
                queue.extend(direct[parent])
        found[name] = order
    return found


def descendants(checks: list[CheckBase]) -> dict[str, list[str]]:
    """Each check's dependents, transitively."""
    down: dict[str, list[str]] = {c.name: [] for c in checks}
    for name, parents in ancestors(checks).items():
        for parent in parents:
            down[parent].append(name)
    return down
