"""A check's run, from probe to decision to deed, and the one escalation.

The runner probes the check -> its state takes the result in and decides
(``CheckState.observe``) -> ``CheckFlow`` does what was decided: start the healer's ladder,
escalate without one, send a recovery, or nothing; probe parents at once when a check
starts failing, and dependents at once when a parent's outcome is in. The healer returns
its outcome; ``escalate`` is the only way a problem reaches the outbox, and an event and
the check state of its transition are written in one transaction.

``daemon.Agent`` builds on it with the lifecycle around the checks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from monitord.agent.delivery import Deliverer
from monitord.agent.dependencies import Dependencies
from monitord.agent.events import EventMaker, event_renderer
from monitord.agent.healer import Healer, Outcome
from monitord.agent.ladders import Ladders
from monitord.agent.outbox import Outbox
from monitord.agent.runner import run_check
from monitord.agent.scheduler import Scheduler
from monitord.agent.state import CheckState, Decision, Rules, Situation, Verdict, log_change
from monitord.agent.statestore import Maintenance, StateStore
from monitord.config import Config
from monitord.durations import format_duration
from monitord.errors import StateError
from monitord.events import Event
from monitord.model import Reading, Result, Status
from monitord.probes.base import CheckBase, ProbeContext, Shared

log = logging.getLogger("monitord.agent.daemon")

STATE_IO_TIMEOUT = 10.0
UNDELIVERABLE = "monitord-delivery"   # the check name of "an event could not be delivered"

OutcomeHandler = Callable[[Outcome], Awaitable[None]]


class CheckFlow:
    def __init__(self, config: Config, shared: Shared, started: float) -> None:
        self.config = config
        self.shared = shared
        self.states: dict[str, CheckState] = {}
        self.outcome_handlers: list[OutcomeHandler] = []
        # Hooks of the discovered sites' work (agent/sites.py): every result, and what a
        # failure with no failing parent waits on ("N sites down" gathers them).
        self.result_hooks: list[Callable[[CheckBase, Result], None]] = []
        self.crowd: Callable[[str, float], tuple[str | None, bool]] | None = None
        self.last_duration: dict[str, float] = {}
        self.last_readings: dict[str, tuple[Reading, ...]] = {}    # for /metrics
        self.outcome_counts: dict[tuple[str, str], int] = {}
        self.events = EventMaker(config.host, event_renderer(config.templates.dir))
        self.outbox: Outbox | None = None
        self.deliverer: Deliverer | None = None
        self._contexts = {c.name: ProbeContext(shared) for c in config.checks}
        self._graph = Dependencies(config.checks, self.states)
        self._dirty: set[str] = set()
        self._store: StateStore | None = None
        self._healer: Healer | None = None
        self._ladders = Ladders()
        self._scheduler: Scheduler | None = None
        self._started = started

    @property
    def store(self) -> StateStore:
        if self._store is None:
            raise StateError("the agent has not started")
        return self._store

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
        self.last_readings[check.name] = result.readings
        for hook in self.result_hooks:
            hook(check, result)
        state = self.states.get(check.name) or self.states.setdefault(check.name,
                                                                      CheckState(check.name))
        was = state.status if state.seen else Status.OK
        situation = await self._situation(check, state, result)
        verdict = state.observe(result, _rules(check), situation)
        if verdict.changes or verdict.moved or was is not Status.OK \
                or result.status is not Status.OK:
            self._dirty.add(check.name)
        for change in verdict.changes:
            log_change(check, state, change, result)
        log.debug("check %s: %s %s", check.name, result.status.name, result.summary)
        if result.status is not Status.OK:
            # Are its parents fine? Asked once per parent: a parent already failing is
            # confirmed at its own retry pace, so that twenty failing sites do not turn
            # nginx's fail_after into twenty probes in a row.
            self._probe(self._unjudged(self._graph.parents(check.name), state.failed_at))
        elif was is not Status.OK:
            # A failure over: its dependents that waited on it may act now.
            self._probe(self._graph.failing_dependents(check.name))
        return result, verdict

    def _unjudged(self, names: list[str], since: float) -> list[str]:
        """Those of ``names`` that look fine but were not probed since ``since``."""
        return [n for n in names if (s := self.states.get(n)) is not None
                and s.status is Status.OK and s.last_run < since]

    async def _situation(self, check: CheckBase, state: CheckState,
                         result: Result) -> Situation:
        """What the state needs to know around ``check``; maintenance and budgets are read
        only when a hard failure may be acted on."""
        parent, settled = (None, False)
        if result.status is not Status.OK:
            parent, settled = self._graph.waited_on(check.name, state.failed_at or result.at,
                                                    self.fixing)
            if parent is None and self.crowd is not None:
                parent, settled = self.crowd(check.name, state.failed_at or result.at)
        holding, allowed = "", True
        if result.status is not Status.OK and state.fail_count + 1 >= check.fail_after:
            if await self._maintenance(check.name) is not None:
                holding = "maintenance"
            elif time.monotonic() - self._started < self.config.healer.grace:
                holding = "grace"   # just started: the machine may still be settling
                allowed = bool(check.heal) and (await self.budgets_left([check])).get(
                    check.name, 1) > 0
        return Situation(parent, settled, self.fixing(check.name), holding, bool(check.heal),
                         allowed)

    def _probe(self, names: list[str]) -> None:
        """Probe ``names`` at once (those not running already)."""
        if self._scheduler is not None:
            for name in names:
                self._scheduler.run_now(name)

    async def _act(self, check: CheckBase, result: Result, verdict: Verdict) -> None:
        state = self.states[check.name]
        if verdict.decision is Decision.RECOVER:
            state.escalated = False       # written with the recovery, in one transaction
            if not await self.send(self.events.recovery(check.name, result), state):
                state.escalated = True
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
        self._probe(self._graph.failing_dependents(state.name))
        return outcome

    async def _after_grace(self) -> None:
        """When the start-up grace ends, failures that waited for it are handled at once."""
        await asyncio.sleep(max(self._started + self.config.healer.grace - time.monotonic(), 0))
        self._probe([name for name, state in self.states.items() if state.wants_action()])

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
        if outcome.kind == "problem" and state is not None:
            state.escalated = True          # written with the event, in one transaction
        if outcome.kind != "cleared":
            await self.send(self.events.from_outcome(outcome), state)
        for handler in self.outcome_handlers:
            await handler(outcome)

    async def send(self, event: Event, state: CheckState | None = None) -> bool:
        """Put ``event`` in the outbox and wake the delivery; with ``state``, the check
        state of the same transition is written in the same transaction (if the disk
        refuses, the event waits in memory and the state stays to be saved). False if the
        event could not be kept at all."""
        if self.outbox is None:
            log.error("no outbox: event not kept: %s", event.title or event.kind)
            return False
        states = [state] if state is not None else []
        try:
            async with asyncio.timeout(STATE_IO_TIMEOUT):
                written = await asyncio.to_thread(self.outbox.put, event, states, time.time())
        except (StateError, TimeoutError) as e:
            log.error("cannot keep an event in the outbox (%s): %s", e, event.title or event.kind)
            return False
        if written and state is not None:
            self._dirty.discard(state.name)
        elif state is not None:
            self._dirty.add(state.name)
        if self.deliverer is not None:
            self.deliverer.wake()
        return True

    async def _undeliverable(self, event: Event, answer: str) -> None:
        """The store refused ``event`` for good: a problem of this agent's own, so that a
        person looks at what was lost."""
        if event.check != UNDELIVERABLE:
            await self.send(self.events.undeliverable(event, answer, UNDELIVERABLE))

    def fixing(self, name: str) -> bool:
        """Whether ``name``'s ladder (or the escalation of its problem) is under way."""
        return self._ladders.running(name) or (
            self._healer is not None and self._healer.busy(name))

    async def budgets_left(self, checks: list[CheckBase] | None = None) -> dict[str, int]:
        """Ladder runs each check may still make in its heal window ({} if unknown)."""
        if self._store is None:
            return {}
        try:
            async with asyncio.timeout(STATE_IO_TIMEOUT):
                return await asyncio.to_thread(self._store.budgets_left,
                                               checks or self.config.checks, time.time())
        except (StateError, TimeoutError) as e:
            log.error("cannot read the heal budgets (%s)", e)
            return {}

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
    return Rules(check.fail_after, check.recover_after, check.flap_window, check.flap_threshold,
                 check.flap_quiet)
